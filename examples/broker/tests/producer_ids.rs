//! Producer ids are handed out once each, across restarts: a broker that
//! gave out ids faster than one a millisecond and restarted at once used
//! to start again at the clock's milliseconds, inside the ids it had
//! already given (a new producer taking an old one's id could have its
//! first batch taken for the old one's retry and never written).

mod common;

use common::Client;
use kafka_protocol::messages::*;
use std::collections::HashSet;
use std::time::Duration;

fn idempotent_id(c: &mut Client) -> i64 {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = None;
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let resp: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &r);
    assert_eq!(resp.error_code, 0, "{resp:?}");
    resp.producer_id.0
}

#[test]
fn a_restart_hands_out_no_producer_id_twice_however_fast_they_went() {
    let config = common::config("producer-ids");
    let mut given = HashSet::new();
    for run in 0..3 {
        let broker = common::start(&config);
        let mut c = Client::connect(broker.local_addr());
        // Far more ids than milliseconds pass before the next start.
        for _ in 0..20_000 {
            let id = idempotent_id(&mut c);
            assert!(
                given.insert(id),
                "run {run}: producer id {id} was handed out before"
            );
        }
        broker.shutdown(Duration::from_secs(5));
    }
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
