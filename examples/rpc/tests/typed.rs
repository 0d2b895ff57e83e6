//! Typed services (`gyre_rpc::service!`) over real loopback connections:
//! a typed client against a typed provider, through one connection and
//! through a cluster; and both against their untyped counterparts, since
//! the wire format is the same.

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{Connection, Consumer, RpcError};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::Status;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An account, a type of the test's own in a service's signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    id: u64,
    owner: String,
    balance: i64,
}

gyre_rpc::service! {
    /// Accounts, with a type of our own in the signatures.
    pub mod bank = "test.Bank" {
        /// Opens an account.
        fn open(owner: String, deposit: i64) -> Account;
        /// Moves money; refuses an overdraft.
        fn withdraw(account: Account, amount: i64) -> Account;
        /// Nothing in, something out.
        fn ping() -> String;
    }
}

struct Bank;

impl bank::Server for Bank {
    fn open(&self, owner: String, deposit: i64) -> Result<Account, ServiceError> {
        Ok(Account {
            id: 7,
            owner,
            balance: deposit,
        })
    }
    fn withdraw(&self, mut account: Account, amount: i64) -> Result<Account, ServiceError> {
        if amount > account.balance {
            return Err(ServiceError::new("insufficient funds"));
        }
        account.balance -= amount;
        Ok(account)
    }
    fn ping(&self) -> Result<String, ServiceError> {
        Ok("pong".into())
    }
}

fn typed_provider(dispatch: Dispatch) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(bank::service(bank::key(), Bank).dispatch(dispatch).build())
        .start()
        .unwrap()
}

#[test]
fn a_typed_client_calls_a_typed_provider_on_either_dispatch() {
    for dispatch in [Dispatch::IoThread, Dispatch::WorkerPool] {
        let p = typed_provider(dispatch);
        let conn = Consumer::builder()
            .build()
            .unwrap()
            .connect(p.local_addr())
            .unwrap();
        let client = bank::Client::new(&conn);
        let account = client.open("ada".into(), 100).unwrap();
        assert_eq!(
            account,
            Account {
                id: 7,
                owner: "ada".into(),
                balance: 100
            }
        );
        let after = client.withdraw(account.clone(), 30).unwrap();
        assert_eq!(after.balance, 70);
        match client.withdraw(after, 1000) {
            Err(RpcError::Failed { status, message }) => {
                assert_eq!(status, Status::ServiceError);
                assert_eq!(message, "insufficient funds");
            }
            other => panic!("expected the service's error, got {other:?}"),
        }
        assert_eq!(client.ping().unwrap(), "pong");
        p.shutdown(Duration::from_secs(1));
    }
}

#[test]
fn a_typed_client_calls_through_a_cluster() {
    let providers: Vec<Provider> = (0..2).map(|_| typed_provider(Dispatch::IoThread)).collect();
    let cluster = Cluster::builder(bank::key()).build(Consumer::builder().build().unwrap());
    cluster.set_providers(providers.iter().map(|p| (p.local_addr(), 100)));
    cluster
        .wait_for_providers(2, Duration::from_secs(5))
        .unwrap();
    let client = bank::Client::new(std::sync::Arc::new(cluster));
    for _ in 0..10 {
        assert_eq!(client.ping().unwrap(), "pong");
    }
}

#[test]
fn typed_and_untyped_sides_speak_the_same_wire_format() {
    // An untyped provider of the same methods, arguments as tuples.
    let untyped = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            Service::builder(bank::key().version("2.0"))
                .dispatch(Dispatch::IoThread)
                .method("open", |(owner, deposit): (String, i64)| {
                    Ok::<_, ServiceError>(Account {
                        id: 1,
                        owner,
                        balance: deposit,
                    })
                })
                .method("ping", |(): ()| {
                    Ok::<_, ServiceError>("untyped pong".to_string())
                })
                .build(),
        )
        .start()
        .unwrap();
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect(untyped.local_addr())
        .unwrap();
    let client = bank::Client::new(&conn).key(bank::key().version("2.0"));
    assert_eq!(client.open("bob".into(), 5).unwrap().owner, "bob");
    assert_eq!(client.ping().unwrap(), "untyped pong");
    // A method the provider lacks is the provider's answer, not a hang.
    let e = client
        .withdraw(
            Account {
                id: 1,
                owner: "bob".into(),
                balance: 5,
            },
            1,
        )
        .unwrap_err();
    assert_eq!(e.status(), Status::ServiceNotFound);

    // And an untyped call to the typed provider.
    let typed = typed_provider(Dispatch::IoThread);
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect(typed.local_addr())
        .unwrap();
    let account: Account = conn.call(&bank::key(), "open", &("eve", 9i64)).unwrap();
    assert_eq!(account.balance, 9);
}

#[test]
fn an_async_typed_client_calls_through_a_connection_and_a_cluster() {
    let providers: Vec<Provider> = [Dispatch::IoThread, Dispatch::WorkerPool]
        .map(typed_provider)
        .into_iter()
        .collect();
    let consumer = Consumer::builder().build().unwrap();
    let conn = consumer.connect(providers[0].local_addr()).unwrap();
    let cluster = Cluster::builder(bank::key()).build(consumer);
    cluster.set_providers(providers.iter().map(|p| (p.local_addr(), 100)));
    cluster
        .wait_for_providers(2, Duration::from_secs(5))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let direct = bank::AsyncClient::new(&conn);
    let through = bank::AsyncClient::new(std::sync::Arc::new(cluster));
    // Futures made on this thread, awaited on the runtime's (they are
    // `Send` and own what they need).
    let opened = direct.open("ada".into(), 100);
    let pings: Vec<_> = (0..20).map(|_| through.ping()).collect();
    let refused = through.withdraw(
        Account {
            id: 7,
            owner: "ada".into(),
            balance: 1,
        },
        5,
    );
    let (account, pongs, refusal) = rt.block_on(async move {
        let pongs = tokio::spawn(async move {
            let mut got = Vec::new();
            for p in pings {
                got.push(p.await);
            }
            got
        });
        (opened.await, pongs.await.unwrap(), refused.await)
    });
    assert_eq!(account.unwrap().balance, 100);
    assert_eq!(pongs.len(), 20);
    assert!(
        pongs.iter().all(|p| matches!(p.as_deref(), Ok("pong"))),
        "{pongs:?}"
    );
    match refusal {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(status, Status::ServiceError);
            assert_eq!(message, "insufficient funds");
        }
        other => panic!("expected the service's error, got {other:?}"),
    }
    for p in providers {
        p.shutdown(Duration::from_secs(1));
    }
}

/// The bank again, its methods asynchronous: `open` awaits a (typed,
/// asynchronous) call to another provider's bank before it answers.
struct AsyncBank {
    upstream: bank::AsyncClient<Connection>,
}

impl bank::AsyncServer for AsyncBank {
    async fn open(&self, owner: String, deposit: i64) -> Result<Account, ServiceError> {
        assert!(gyre_reactor::is_event_loop_thread());
        let mut account = self
            .upstream
            .open(owner, deposit)
            .await
            .map_err(|e| ServiceError::new(e.to_string()))?;
        account.id += 1000;
        Ok(account)
    }
    async fn withdraw(&self, account: Account, amount: i64) -> Result<Account, ServiceError> {
        bank::Server::withdraw(&Bank, account, amount)
    }
    async fn ping(&self) -> Result<String, ServiceError> {
        Ok("async pong".into())
    }
}

#[test]
fn an_async_typed_provider_awaits_its_own_calls() {
    let upstream = typed_provider(Dispatch::WorkerPool);
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect(upstream.local_addr())
        .unwrap();
    let front = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            bank::async_service(
                bank::key(),
                AsyncBank {
                    upstream: bank::AsyncClient::new(conn),
                },
            )
            .build(),
        )
        .start()
        .unwrap();
    let client = bank::Client::new(
        Consumer::builder()
            .build()
            .unwrap()
            .connect(front.local_addr())
            .unwrap(),
    );
    let account = client.open("ada".into(), 10).unwrap();
    assert_eq!((account.id, account.balance), (1007, 10));
    assert_eq!(client.ping().unwrap(), "async pong");
    match client.withdraw(account, 50) {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(status, Status::ServiceError);
            assert_eq!(message, "insufficient funds");
        }
        other => panic!("{other:?}"),
    }
    front.shutdown(Duration::from_secs(1));
    upstream.shutdown(Duration::from_secs(1));
}
