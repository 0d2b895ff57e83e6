//! The broker's data folder: every topic's partition logs, owned by the
//! log writer thread, and the [`Catalog`] the loops read.
//!
//! Layout: `<data>/topics/<topic>/topic.properties` (partition count, log
//! settings and id, under a checksum: a damaged file refuses the start,
//! naming itself) beside one folder of segments per partition,
//! `<data>/topics/<topic>/<index>/`. A topic is created by opening its
//! partition logs and then writing its properties file (through a
//! temporary file and a rename), so a topic folder without one is a create
//! that crashed, removed at the next start. A topic is deleted by moving
//! its folder into `<data>/trash/` and removing it from there, which a
//! restart finishes if it was cut short. How much of each log a start
//! checks is decided by the clean-shutdown marker and the recovery-point
//! checkpoint beside `topics/` (see [`checkpoint`]). A `Storage` holds
//! the folder's lock (`<data>/.lock`) while it lives: a second broker on
//! the same folder is refused before it reads or changes anything.

use crate::checkpoint;
use crate::data_lock::DataLock;
use crate::folder_sync::{self, Durability};
use crate::id_hash::IdMap;
use crate::log::{LogConfig, LogError, OpenFiles, PartitionLog, Recovery, Truncation};
use crate::topic_config;
use crate::topics::{self, Catalog, PartitionId, Topic, TopicError};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Each topic folder's file of its partition count, config and id.
pub const PROPERTIES: &str = "topic.properties";
/// The properties key of the topic's id.
const TOPIC_ID: &str = "topic.id";

/// The key of a properties file's first line: the CRC-32C of the rest of
/// the file, so that a flipped digit (a retention of days read as hours,
/// a partition count grown) is refused rather than acted on. First, so a
/// file cut short loses its settings, not its checksum.
const CHECKSUM: &str = "crc32c";

/// Replaces the topic folder `dir`'s properties file durably: a temporary
/// file, synced, renamed over it, and the folder synced.
fn write_properties(
    dir: &Path,
    id: &topics::Uuid,
    partitions: usize,
    config: &LogConfig,
) -> io::Result<()> {
    let body = format!(
        "{TOPIC_ID}={id}\n{}",
        topic_config::config_lines(partitions, config)
    );
    let text = format!("{CHECKSUM}={:08x}\n{body}", crc32c::crc32c(body.as_bytes()));
    folder_sync::replace(&dir.join(PROPERTIES), text.as_bytes(), Durability::Durable)
}

/// A topic's properties, as its file holds them.
#[derive(Debug)]
pub struct Properties {
    /// Its partition count.
    pub partitions: usize,
    /// Its config, on top of the broker's defaults.
    pub config: LogConfig,
    /// Its id (none in a file from before topics had ids).
    pub id: Option<topics::Uuid>,
    /// Whether the file carries a checksum (one from before checksums
    /// does not).
    pub checksummed: bool,
}

/// A topic's properties file `text`, its checksum checked, its config on
/// top of `defaults`.
pub fn parse_properties(defaults: &LogConfig, text: &str) -> Result<Properties, TopicError> {
    let (body, checksummed) = match text
        .strip_prefix(CHECKSUM)
        .and_then(|t| t.strip_prefix('='))
    {
        None => (text, false),
        Some(rest) => {
            let (sum, body) = rest.split_once('\n').unwrap_or((rest, ""));
            let want = u32::from_str_radix(sum.trim(), 16).ok();
            let found = crc32c::crc32c(body.as_bytes());
            if want != Some(found) {
                return Err(TopicError::Storage(format!(
                    "damaged: its settings sum to {found:08x}, not to the {CHECKSUM} {sum:?} written with them (restore the file, or check its settings by hand and remove its first line)"
                )));
            }
            (body, true)
        }
    };
    let mut config = defaults.clone();
    let mut count = None;
    let mut id = None;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        if key == "partitions" {
            count = value.parse::<usize>().ok();
        } else if key == TOPIC_ID {
            let parsed = topics::Uuid::parse_str(value).ok().filter(|u| !u.is_nil());
            id = Some(parsed.ok_or_else(|| TopicError::InvalidConfig {
                key: key.to_owned(),
                value: value.to_owned(),
                reason: "not a topic id".to_owned(),
            })?);
        } else {
            topic_config::apply_config(&mut config, key, value)?;
        }
    }
    let partitions = count.ok_or(TopicError::InvalidPartitions(-1))?;
    Ok(Properties {
        partitions,
        config,
        id,
        checksummed,
    })
}

/// The logs of every topic, and the catalog of them.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    defaults: LogConfig,
    default_partitions: i32,
    catalog: Arc<Catalog>,
    logs: IdMap<PartitionLog>,
    /// Each partition's topic and index, for the checkpoint.
    names: IdMap<(String, usize)>,
    /// Offsets below which each partition is known synced.
    recovery_points: IdMap<i64>,
    /// Whether `recovery_points` changed since the checkpoint was written.
    checkpoint_stale: bool,
    /// Segments with open files across every log, and the most allowed.
    open_files: Arc<OpenFiles>,
    max_open_segments: usize,
    next_id: PartitionId,
    /// The leader epoch of every partition while this storage is open
    /// (see [`leader_epoch`](crate::leader_epoch)).
    leader_epoch: i32,
    /// This broker's hold on the folder: no other may open it meanwhile.
    _lock: DataLock,
}

/// Descriptors each segment with open files holds.
pub const FILES_PER_SEGMENT: usize = 3;

/// The default cap on segments with open files for a process allowed
/// `open_files` descriptors: half of them, leaving the rest for
/// connections and everything else.
pub fn default_max_open_segments(open_files: u64) -> usize {
    ((open_files / 2) as usize / FILES_PER_SEGMENT).max(16)
}

impl Storage {
    /// Opens (or creates) the data folder `root`, recovering every
    /// partition's log (only segment tails after a clean stop; every batch
    /// past each recovery point otherwise); returns what recovery cut off.
    /// `defaults` are the
    /// settings of topics created without their own, with
    /// `default_partitions` partitions.
    pub fn open(
        root: &Path,
        defaults: LogConfig,
        default_partitions: i32,
    ) -> Result<(Self, Vec<Truncation>), LogError> {
        let max = default_max_open_segments(gyre_reactor::open_file_limit());
        Self::open_capped(root, defaults, default_partitions, max)
    }

    /// [`open`](Self::open), keeping at most `max_open_segments` segments'
    /// files open at once (the least recently used are closed, and open
    /// again when next needed), so a broker with more partitions than
    /// descriptors still starts and runs.
    pub fn open_capped(
        root: &Path,
        defaults: LogConfig,
        default_partitions: i32,
        max_open_segments: usize,
    ) -> Result<(Self, Vec<Truncation>), LogError> {
        let topics_dir = root.join("topics");
        // A folder this broker has never written to has nothing to
        // recover, and its start must not say that something stopped.
        let new_folder = !topics_dir.exists();
        // Before anything in it is read or changed: one broker per folder.
        fs::create_dir_all(root)?;
        let lock = DataLock::acquire(root)?;
        fs::create_dir_all(&topics_dir)?;
        if new_folder {
            folder_sync::sync_folder(root)?;
        }
        let trash = root.join("trash");
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        let clean = checkpoint::take_clean_marker(root)?;
        let points = checkpoint::read(root);
        let log_starts = checkpoint::read_named(root, checkpoint::LOG_START);
        tracing::info!(
            dir = %root.display(),
            clean,
            recovery_points = points.len(),
            "{}",
            if new_folder {
                "a new data folder: nothing to recover"
            } else if clean {
                "clean stop: checking segment tails"
            } else {
                "unclean stop: checking every batch past each recovery point"
            }
        );
        let mut storage = Storage {
            root: root.to_owned(),
            defaults,
            default_partitions,
            catalog: Arc::new(Catalog::default()),
            logs: IdMap::default(),
            names: IdMap::default(),
            recovery_points: IdMap::default(),
            checkpoint_stale: false,
            open_files: Arc::default(),
            max_open_segments: max_open_segments.max(1),
            next_id: 0,
            leader_epoch: 0,
            _lock: lock,
        };
        let mut truncations = Vec::new();
        let mut floors_cut = false;
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
            let parsed = parse_properties(&storage.defaults, &props).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(PROPERTIES).display()),
                )
            })?;
            let (count, config) = (parsed.partitions, parsed.config);
            let id = match parsed.id {
                Some(id) if parsed.checksummed => id,
                Some(id) => {
                    // Written before the files had checksums: given one.
                    write_properties(&dir, &id, count, &config)?;
                    id
                }
                None => {
                    // Written before topics had ids: give it one for good.
                    let id = topics::new_topic_id();
                    write_properties(&dir, &id, count, &config)?;
                    tracing::info!(topic = name, %id, "gave a topic its id");
                    id
                }
            };
            let mut partitions = Vec::with_capacity(count);
            for index in 0..count {
                let recovery = if clean {
                    Recovery::Clean
                } else {
                    let key = (name.clone(), index);
                    Recovery::From(points.get(&key).copied().unwrap_or(0))
                };
                let (mut log, cut) = PartitionLog::open_in(
                    &dir.join(index.to_string()),
                    config.clone(),
                    recovery,
                    &storage.open_files,
                )?;
                if let Some(&floor) = log_starts.get(&(name.clone(), index)) {
                    // Past the end after a cut: set at the end, and that
                    // written down before anything is appended above it.
                    floors_cut |= floor > log.end_offset();
                    log.set_start_floor(floor);
                }
                truncations.extend(cut);
                let id = storage.add_log(&name, index, log);
                if let Recovery::From(point) = recovery {
                    let point = point.min(storage.logs[&id].end_offset());
                    storage.recovery_points.insert(id, point);
                }
                partitions.push(id);
                storage.close_idle_files();
            }
            storage.catalog.insert(Arc::new(Topic {
                name,
                id,
                partitions,
                config,
            }));
        }
        if floors_cut {
            storage.write_log_starts()?;
        }
        storage.take_leadership()?;
        Ok((storage, truncations))
    }

    /// Raises the leader epoch past the last start's and every
    /// partition's, durably, and makes it every log's, before anything is
    /// appended.
    fn take_leadership(&mut self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let last = crate::leader_epoch::read(&self.root);
        let recorded = self
            .logs
            .values()
            .filter_map(|log| log.epochs().latest().map(|l| l.epoch));
        let epoch = crate::leader_epoch::next(last, recorded);
        crate::leader_epoch::write(&self.root, epoch)?;
        for log in self.logs.values_mut() {
            log.lead(epoch, last)?;
        }
        self.close_idle_files();
        self.leader_epoch = epoch;
        self.catalog.set_leader_epoch(epoch);
        tracing::info!(
            leader_epoch = epoch,
            partitions = self.logs.len(),
            ms = started.elapsed().as_millis() as u64,
            "took the leadership of every partition"
        );
        Ok(())
    }

    /// The leader epoch of every partition.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// A properties file's partition count, settings and topic id (`None`
    /// in a file written before topics had ids).
    fn add_log(&mut self, topic: &str, index: usize, log: PartitionLog) -> PartitionId {
        let id = self.next_id;
        self.next_id += 1;
        // A log opened clean (or new) is durable to its end.
        self.recovery_points.insert(id, log.end_offset());
        self.checkpoint_stale = true;
        self.logs.insert(id, log);
        self.names.insert(id, (topic.to_owned(), index));
        id
    }

    /// Segments with open files now, and the most allowed at once.
    pub fn open_segments(&self) -> (usize, usize) {
        (self.open_files.open(), self.max_open_segments)
    }

    /// Closes the least recently used segment files while more segments
    /// than the cap have them open, down to three quarters of the cap (so
    /// that the scan this takes is paid once per many opens). Cheap when
    /// under the cap: call it after anything that may open files.
    pub fn close_idle_files(&mut self) {
        let open = self.open_files.open();
        if open <= self.max_open_segments {
            return;
        }
        let mut candidates: Vec<(u64, PartitionId, i64)> = self
            .logs
            .iter()
            .flat_map(|(id, log)| log.open_segment_files().map(move |(t, b)| (t, *id, b)))
            .collect();
        candidates.sort_unstable();
        let excess = open.saturating_sub(self.max_open_segments * 3 / 4);
        for (_, id, base) in candidates.into_iter().take(excess) {
            if let Some(log) = self.logs.get(&id) {
                log.close_segment_files(base);
            }
        }
    }

    /// Records that partition `id` is synced below `offset` (its
    /// recovery point moves there, never back).
    pub fn mark_durable(&mut self, id: PartitionId, offset: i64) {
        if let Some(point) = self.recovery_points.get_mut(&id) {
            if offset > *point {
                *point = offset;
                self.checkpoint_stale = true;
            }
        }
    }

    /// Writes the recovery-point checkpoint if a point moved since the
    /// last write (cheap: one small file and a rename, no fsync).
    pub fn write_checkpoint(&mut self) -> io::Result<()> {
        if !self.checkpoint_stale {
            return Ok(());
        }
        let names = &self.names;
        checkpoint::write(
            &self.root,
            self.recovery_points.iter().map(|(id, &offset)| {
                let (topic, index) = &names[id];
                (topic.as_str(), *index, offset)
            }),
        )?;
        self.checkpoint_stale = false;
        Ok(())
    }

    /// Every partition with a transaction open: the partition, its topic
    /// and index, the producer and its epoch (for the transaction
    /// coordinator to finish or abort at start).
    pub fn open_transactions(&self) -> Vec<(PartitionId, String, i32, i64, i16)> {
        let mut open = Vec::new();
        for (&id, log) in &self.logs {
            let Some((topic, index)) = self.names.get(&id) else {
                continue;
            };
            for (producer_id, epoch) in log.open_transactions() {
                open.push((id, topic.clone(), *index as i32, producer_id, epoch));
            }
        }
        open
    }

    /// The (total, usable) bytes of the file system holding the data
    /// folder, as statvfs(3) reports them (usable: what an unprivileged
    /// process may still write); `None` if it cannot say.
    pub fn disk_space(&self) -> Option<(u64, u64)> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.root.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a NUL-terminated string that outlives the
        // call, and `st` points to writable memory of a `statvfs`'s size,
        // which the call fills in whole when it returns 0 (read only then).
        let st = unsafe {
            if libc::statvfs(path.as_ptr(), st.as_mut_ptr()) != 0 {
                return None;
            }
            st.assume_init()
        };
        let block = st.f_frsize as u64;
        Some((
            (st.f_blocks as u64).saturating_mul(block),
            (st.f_bavail as u64).saturating_mul(block),
        ))
    }

    /// The last step of a clean stop: syncs every log with anything not
    /// yet synced, writes the snapshots that changed, checkpoints every
    /// partition at its end, and writes the clean-shutdown marker, so the
    /// next start checks only segment tails. Nothing may be appended after.
    /// (A partition untouched since the last sync or clean start costs no
    /// fsync: a broker with thousands of idle partitions stops in
    /// milliseconds, not seconds.)
    pub fn close_cleanly(&mut self) -> io::Result<()> {
        for (&id, log) in &self.logs {
            if log.unsynced() {
                log.sync()?;
            }
            log.write_producer_snapshot()?;
            let end = log.end_offset();
            if let Some(point) = self.recovery_points.get_mut(&id) {
                *point = end;
            }
        }
        self.checkpoint_stale = true;
        self.write_checkpoint()?;
        checkpoint::mark_clean(&self.root)
    }

    /// The catalog the loops read.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The partition count of topics created without one.
    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
    }

    /// The highest producer id any partition remembers.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.logs
            .values()
            .filter_map(PartitionLog::max_producer_id)
            .max()
    }

    /// The log of partition `id`.
    pub fn log(&self, id: PartitionId) -> Option<&PartitionLog> {
        self.logs.get(&id)
    }

    /// The log of partition `id`, to append to.
    pub fn log_mut(&mut self, id: PartitionId) -> Option<&mut PartitionLog> {
        self.logs.get_mut(&id)
    }

    /// What the log cleaner should compact now: a plan per compacted log
    /// dirty enough (see [`PartitionLog::cleaning_plan`]).
    pub fn cleaning_plans(&self) -> Vec<(PartitionId, crate::log::cleaner::CleanPlan)> {
        let mut plans = Vec::new();
        for (&pid, log) in &self.logs {
            match log.cleaning_plan() {
                Ok(Some(plan)) => plans.push((pid, plan)),
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = pid, error = %e, "cannot plan compaction"),
            }
        }
        plans
    }

    /// Every partition's log.
    pub fn logs_mut(&mut self) -> impl Iterator<Item = (PartitionId, &mut PartitionLog)> {
        self.logs.iter_mut().map(|(id, log)| (*id, log))
    }

    /// Creates topic `name` with `partitions` partitions (the default if
    /// -1, as Kafka's CreateTopics allows) and the given config overrides,
    /// and publishes it in the catalog.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, TopicError> {
        topics::validate_name(name)?;
        let (partitions, config) =
            topic_config::planned(partitions, configs, &self.defaults, self.default_partitions)?;
        if self.catalog.get(name).is_some() {
            return Err(TopicError::Exists(name.to_owned()));
        }
        let dir = self.root.join("topics").join(name);
        let storage = |e: &dyn std::fmt::Display| TopicError::Storage(format!("{name}: {e}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| storage(&e))?;
        }
        let mut logs = Vec::with_capacity(partitions as usize);
        for index in 0..partitions {
            let (mut log, _) = PartitionLog::open_in(
                &dir.join(index.to_string()),
                config.clone(),
                Recovery::From(0),
                &self.open_files,
            )
            .map_err(|e| storage(&e))?;
            log.lead(self.leader_epoch, None).map_err(|e| storage(&e))?;
            logs.push(log);
            self.close_idle_files();
        }
        let topic_id = topics::new_topic_id();
        // The properties file and the partitions' folders, then the
        // topic's own folder: a topic acknowledged is one a power loss
        // leaves in place.
        write_properties(&dir, &topic_id, logs.len(), &config)
            .and_then(|()| folder_sync::sync_folder(&self.root.join("topics")))
            .map_err(|e| storage(&e))?;
        let ids = logs
            .into_iter()
            .enumerate()
            .map(|(index, log)| self.add_log(name, index, log))
            .collect();
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            id: topic_id,
            partitions: ids,
            config,
        });
        self.catalog.insert(topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Grows topic `name` to `count` partitions: the new partitions' logs
    /// are opened, then the properties file is replaced (through a
    /// temporary file and a rename), then the catalog's entry, so a crash
    /// midway leaves the old count and empty folders the next growth
    /// reuses.
    pub fn add_partitions(&mut self, name: &str, count: i32) -> Result<(), TopicError> {
        let topic = self
            .catalog
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?;
        let current = topic.partitions.len();
        if count <= current as i32 {
            return Err(TopicError::NotGrown {
                topic: name.to_owned(),
                current,
                requested: count,
            });
        }
        if count > topics::MAX_PARTITIONS {
            return Err(TopicError::InvalidPartitions(count));
        }
        let dir = self.root.join("topics").join(name);
        let storage = |e: &dyn std::fmt::Display| TopicError::Storage(format!("{name}: {e}"));
        let mut logs = Vec::new();
        for index in current..count as usize {
            let folder = dir.join(index.to_string());
            // Left by a growth that crashed before its properties file.
            if folder.exists() {
                fs::remove_dir_all(&folder).map_err(|e| storage(&e))?;
            }
            let (mut log, _) = PartitionLog::open_in(
                &folder,
                topic.config.clone(),
                Recovery::From(0),
                &self.open_files,
            )
            .map_err(|e| storage(&e))?;
            log.lead(self.leader_epoch, None).map_err(|e| storage(&e))?;
            logs.push(log);
            self.close_idle_files();
        }
        write_properties(&dir, &topic.id, count as usize, &topic.config)
            .map_err(|e| storage(&e))?;
        let mut partitions = topic.partitions.clone();
        for (k, log) in logs.into_iter().enumerate() {
            partitions.push(self.add_log(name, current + k, log));
        }
        self.catalog.insert(Arc::new(Topic {
            name: name.to_owned(),
            id: topic.id,
            partitions,
            config: topic.config.clone(),
        }));
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Deletes the records below `offset` (-1: all) in partition `id`
    /// (DeleteRecords) and durably records every partition's moved start,
    /// before answering: the new low watermark (`None`: no such
    /// partition).
    pub fn delete_records(
        &mut self,
        id: PartitionId,
        offset: i64,
    ) -> Option<Result<i64, LogError>> {
        let log = self.logs.get_mut(&id)?;
        Some(log.delete_records_before(offset).and_then(|start| {
            self.write_log_starts()?;
            Ok(start)
        }))
    }

    fn write_log_starts(&self) -> io::Result<()> {
        let names = &self.names;
        let moved: Vec<(&str, usize, i64)> = self
            .logs
            .iter()
            .filter(|(_, log)| log.start_offset() > 0)
            .map(|(pid, log)| {
                let (topic, index) = &names[pid];
                (topic.as_str(), *index, log.start_offset())
            })
            .collect();
        checkpoint::write_named(&self.root, checkpoint::LOG_START, moved.into_iter(), true)
    }

    /// Applies `changes` to topic `name`'s config (all or none): its
    /// partition logs take the new settings, the properties file is
    /// replaced (through a temporary file and a rename), then the
    /// catalog's entry. With `validate_only`, only checks them.
    pub fn alter_config(
        &mut self,
        name: &str,
        changes: &[topic_config::ConfigChange],
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let topic = self
            .catalog
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_owned()))?;
        let mut config = topic.config.clone();
        for change in changes {
            match change {
                topic_config::ConfigChange::Set(key, value) => {
                    topic_config::apply_config(&mut config, key, value)?
                }
                topic_config::ConfigChange::Delete(key) => {
                    topic_config::reset_config(&mut config, key, &self.defaults)?
                }
            }
        }
        if validate_only {
            return Ok(());
        }
        let dir = self.root.join("topics").join(name);
        write_properties(&dir, &topic.id, topic.partitions.len(), &config)
            .map_err(|e| TopicError::Storage(format!("{name}: {e}")))?;
        for id in &topic.partitions {
            if let Some(log) = self.logs.get_mut(id) {
                log.set_config(config.clone());
            }
        }
        self.catalog.insert(Arc::new(Topic {
            name: name.to_owned(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            config,
        }));
        tracing::info!(topic = name, ?changes, "altered topic config");
        Ok(())
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
            self.names.remove(id);
            self.recovery_points.remove(id);
        }
        // A topic made again under this name must not inherit these points,
        // nor a start DeleteRecords moved.
        self.checkpoint_stale = true;
        if let Err(e) = self.write_checkpoint() {
            tracing::error!(topic = name, error = %e, "cannot rewrite the recovery-point checkpoint");
        }
        if self.root.join(checkpoint::LOG_START).exists() {
            if let Err(e) = self.write_log_starts() {
                tracing::error!(topic = name, error = %e, "cannot rewrite the log-start checkpoint");
            }
        }
        let trash = self.root.join("trash");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let gone = trash.join(format!("{name}-{nanos}"));
        // Synced once moved away, so a power loss does not bring the
        // deleted topic back at the next start.
        let result = fs::create_dir_all(&trash)
            .and_then(|()| fs::rename(self.root.join("topics").join(name), &gone))
            .and_then(|()| folder_sync::sync_folder(&self.root.join("topics")))
            .and_then(|()| fs::remove_dir_all(&gone));
        tracing::info!(topic = name, "deleted topic");
        result.map_err(|e| TopicError::Storage(format!("{name}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use folder_sync::record;

    #[test]
    fn a_new_folder_a_created_topic_and_a_deleted_one_are_made_durable_in_their_folders() {
        let root = gyre_testkit::scratch_dir("storage-folders");
        let topics = root.join("topics");
        record::take();
        let (mut storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        assert_eq!(
            record::take(),
            [root.clone(), root.clone()],
            "the new `topics` folder, then the leader epoch's file"
        );
        storage.create_topic("t", 2, &[]).unwrap();
        assert_eq!(
            record::take(),
            [topics.join("t"), topics.clone()],
            "the partitions' folders and the properties, then the topic's folder"
        );
        storage.delete_topic("t").unwrap();
        assert_eq!(
            record::take(),
            std::slice::from_ref(&topics),
            "the topic's folder gone"
        );
        drop(storage);
        let (storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        assert!(storage.catalog().get("t").is_none());
        assert_eq!(
            record::take(),
            std::slice::from_ref(&root),
            "a folder opened again gained nothing but its new leader epoch"
        );
        assert_eq!(storage.leader_epoch(), 2);
        drop(storage);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_damaged_properties_file_refuses_the_start_and_one_from_before_checksums_gets_one() {
        let root = gyre_testkit::scratch_dir("storage-properties-sum");
        let (mut storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        storage.create_topic("t", 1, &[]).unwrap();
        drop(storage);
        let path = root.join("topics/t").join(PROPERTIES);
        let text = fs::read_to_string(&path).unwrap();
        let (first, body) = text.split_once('\n').unwrap();
        assert!(first.starts_with("crc32c="), "{text}");
        // One flipped digit: a partition count grown from 1 to 9.
        fs::write(&path, text.replace("partitions=1\n", "partitions=9\n")).unwrap();
        let refused = Storage::open(&root, LogConfig::default(), 1).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("damaged"), "{message}");
        // Written before checksums: read as it is, and given one.
        fs::write(&path, body).unwrap();
        let (storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        assert_eq!(storage.catalog().get("t").unwrap().partitions.len(), 1);
        drop(storage);
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_log_start_past_a_cut_logs_end_is_written_down_at_the_end() {
        let root = gyre_testkit::scratch_dir("storage-floor-past-end");
        let append = |storage: &mut Storage, n: usize| {
            let pid = storage.catalog().get("t").unwrap().partitions[0];
            let log = storage.log_mut(pid).unwrap();
            for _ in 0..n {
                log.append(&crate::log::batch::build(0, 1_000, &[b"v"]))
                    .unwrap();
            }
            log.sync().unwrap();
        };
        let start = |storage: &Storage| {
            let pid = storage.catalog().get("t").unwrap().partitions[0];
            storage.log(pid).unwrap().start_offset()
        };
        let (mut storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        storage.create_topic("t", 1, &[]).unwrap();
        append(&mut storage, 3);
        drop(storage);
        // DeleteRecords to 5 was written down, and the records from 3 on
        // were lost to a power cut.
        let floor = [("t", 0, 5)].into_iter();
        checkpoint::write_named(&root, checkpoint::LOG_START, floor, true).unwrap();
        let (mut storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        assert_eq!(start(&storage), 3);
        append(&mut storage, 4);
        drop(storage);
        let (storage, _) = Storage::open(&root, LogConfig::default(), 1).unwrap();
        assert_eq!(
            start(&storage),
            3,
            "the records appended after the cut are not hidden at the next start"
        );
    }
}
