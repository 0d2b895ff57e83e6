//! The broker's data folder: every topic's partition logs, owned by the
//! log writer thread, and the [`Catalog`] the loops read.
//!
//! Layout: `<data>/topics/<topic>/topic.properties` (partition count and
//! log settings) beside one folder of segments per partition,
//! `<data>/topics/<topic>/<index>/`. A topic is created by opening its
//! partition logs and then writing its properties file (through a
//! temporary file and a rename), so a topic folder without one is a create
//! that crashed, removed at the next start. A topic is deleted by moving
//! its folder into `<data>/trash/` and removing it from there, which a
//! restart finishes if it was cut short.

use crate::log::{LogConfig, LogError, PartitionLog, Truncation};
use crate::topics::{self, Catalog, Topic, TopicError};
use crate::writer::PartitionId;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PROPERTIES: &str = "topic.properties";

/// The logs of every topic, and the catalog of them.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    defaults: LogConfig,
    default_partitions: i32,
    catalog: Arc<Catalog>,
    logs: HashMap<PartitionId, PartitionLog>,
    next_id: PartitionId,
}

impl Storage {
    /// Opens (or creates) the data folder `root`, recovering every
    /// partition's log; returns what recovery cut off. `defaults` are the
    /// settings of topics created without their own, with
    /// `default_partitions` partitions.
    pub fn open(
        root: &Path,
        defaults: LogConfig,
        default_partitions: i32,
    ) -> Result<(Self, Vec<Truncation>), LogError> {
        let topics_dir = root.join("topics");
        fs::create_dir_all(&topics_dir)?;
        let trash = root.join("trash");
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        let mut storage = Storage {
            root: root.to_owned(),
            defaults,
            default_partitions,
            catalog: Arc::new(Catalog::default()),
            logs: HashMap::new(),
            next_id: 0,
        };
        let mut truncations = Vec::new();
        let mut names: Vec<String> = fs::read_dir(&topics_dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let dir = topics_dir.join(&name);
            let Ok(props) = fs::read_to_string(dir.join(PROPERTIES)) else {
                tracing::warn!(dir = %dir.display(), "removing a topic whose creation did not finish");
                fs::remove_dir_all(&dir)?;
                continue;
            };
            let (count, config) = storage.parse_properties(&props).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(PROPERTIES).display()),
                )
            })?;
            let mut partitions = Vec::with_capacity(count);
            for index in 0..count {
                let (log, cut) = PartitionLog::open(&dir.join(index.to_string()), config.clone())?;
                truncations.extend(cut);
                partitions.push(storage.add_log(log));
            }
            storage.catalog.insert(Arc::new(Topic {
                name,
                partitions,
                config,
            }));
        }
        Ok((storage, truncations))
    }

    fn parse_properties(&self, text: &str) -> Result<(usize, LogConfig), TopicError> {
        let mut config = self.defaults.clone();
        let mut count = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            if key == "partitions" {
                count = value.parse::<usize>().ok();
            } else {
                topics::apply_config(&mut config, key, value)?;
            }
        }
        let count = count.ok_or(TopicError::InvalidPartitions(-1))?;
        Ok((count, config))
    }

    fn add_log(&mut self, log: PartitionLog) -> PartitionId {
        let id = self.next_id;
        self.next_id += 1;
        self.logs.insert(id, log);
        id
    }

    /// The catalog the loops read.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The partition count of topics created without one.
    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
    }

    /// The log of partition `id`.
    pub fn log(&self, id: PartitionId) -> Option<&PartitionLog> {
        self.logs.get(&id)
    }

    /// The log of partition `id`, to append to.
    pub fn log_mut(&mut self, id: PartitionId) -> Option<&mut PartitionLog> {
        self.logs.get_mut(&id)
    }

    /// Every partition's log.
    pub fn logs_mut(&mut self) -> impl Iterator<Item = (PartitionId, &mut PartitionLog)> {
        self.logs.iter_mut().map(|(id, log)| (*id, log))
    }

    /// Creates topic `name` with `partitions` partitions (the default if
    /// negative, as Kafka's CreateTopics allows) and the given config
    /// overrides, and publishes it in the catalog.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, TopicError> {
        topics::validate_name(name)?;
        let partitions = if partitions < 0 {
            self.default_partitions
        } else {
            partitions
        };
        if !(1..=topics::MAX_PARTITIONS).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        if self.catalog.get(name).is_some() {
            return Err(TopicError::Exists(name.to_owned()));
        }
        let mut config = self.defaults.clone();
        for (key, value) in configs {
            topics::apply_config(&mut config, key, value)?;
        }
        let dir = self.root.join("topics").join(name);
        let storage = |e: &dyn std::fmt::Display| TopicError::Storage(format!("{name}: {e}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| storage(&e))?;
        }
        let mut logs = Vec::with_capacity(partitions as usize);
        for index in 0..partitions {
            let (log, _) = PartitionLog::open(&dir.join(index.to_string()), config.clone())
                .map_err(|e| storage(&e))?;
            logs.push(log);
        }
        let tmp = dir.join(format!("{PROPERTIES}.tmp"));
        fs::write(&tmp, topics::config_lines(logs.len(), &config))
            .and_then(|()| fs::File::open(&tmp)?.sync_all())
            .and_then(|()| fs::rename(&tmp, dir.join(PROPERTIES)))
            .and_then(|()| fs::File::open(&dir)?.sync_all())
            .map_err(|e| storage(&e))?;
        let ids = logs.into_iter().map(|log| self.add_log(log)).collect();
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            partitions: ids,
            config,
        });
        self.catalog.insert(topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes topic `name`: out of the catalog first, then its logs and
    /// files.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), TopicError> {
        let topic = self
            .catalog
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?;
        for id in &topic.partitions {
            self.logs.remove(id);
        }
        let trash = self.root.join("trash");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let gone = trash.join(format!("{name}-{nanos}"));
        let result = fs::create_dir_all(&trash)
            .and_then(|()| fs::rename(self.root.join("topics").join(name), &gone))
            .and_then(|()| fs::remove_dir_all(&gone));
        tracing::info!(topic = name, "deleted topic");
        result.map_err(|e| TopicError::Storage(format!("{name}: {e}")))
    }
}
