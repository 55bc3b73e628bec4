//! One connection to an etcd cluster, shared by the store, members, elections and watches: the
//! client, the key prefix everything lives under, and the deadline every request is held to.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, GetOptions, GetResponse, KeyValue, PutOptions, PutResponse, Txn,
    TxnResponse, WatchOptions, WatchStream,
};

use crate::address::EtcdAddress;
use crate::error::{FleetError, describe_etcd};

/// How many keys one page of a [`Etcd::scan`] holds: small enough that a page of records or
/// member entries stays far under the client's 4 MiB message limit.
const SCAN_PAGE: i64 = 500;

/// How long one operation may take unless the caller says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// A connection to an etcd cluster under one key prefix. Cheap to clone (clones share the
/// client's channels).
///
/// Every request made through it is bounded by its deadline and fails with
/// [`FleetError::Timeout`] past it; requests go to whichever endpoint answers, so the loss of
/// one member of the cluster is not seen by callers.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    address: EtcdAddress,
    root: String,
    deadline: Duration,
}

impl Etcd {
    /// Connects to the cluster `address` names, with the [`DEFAULT_DEADLINE`].
    pub async fn connect(address: &EtcdAddress) -> Result<Etcd, FleetError> {
        Self::connect_with_deadline(address, DEFAULT_DEADLINE).await
    }

    /// Connects to the cluster `address` names; every later operation is held to `deadline`.
    pub async fn connect_with_deadline(
        address: &EtcdAddress,
        deadline: Duration,
    ) -> Result<Etcd, FleetError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(deadline)
            .with_timeout(deadline)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let endpoints = address.endpoints.join(",");
        let connect = Client::connect(address.urls(), Some(options));
        let client = match tokio::time::timeout(deadline, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                return Err(FleetError::Connect {
                    endpoints,
                    detail: describe_etcd(&error),
                });
            }
            Err(_) => {
                return Err(FleetError::Timeout {
                    op: format!("connect to etcd at {endpoints}"),
                    after: deadline,
                });
            }
        };
        Ok(Etcd {
            client,
            address: address.clone(),
            root: format!("/{}", address.prefix),
            deadline,
        })
    }

    /// The address this connection was made from.
    pub fn address(&self) -> &EtcdAddress {
        &self.address
    }

    /// The deadline each operation is held to.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// A clone of the client, for a request of its own.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// The key `rest` under this connection's prefix (`/PREFIX/rest`).
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.root)
    }

    /// Reads `key` (or a range, as `options` say), retrying while etcd is briefly unavailable.
    pub(crate) async fn get(
        &self,
        op: &str,
        key: impl Into<Vec<u8>>,
        options: Option<GetOptions>,
    ) -> Result<GetResponse, FleetError> {
        let key = key.into();
        self.retry(op, |mut client| {
            let (key, options) = (key.clone(), options.clone());
            async move { client.get(key, options).await }
        })
        .await
    }

    /// Every key under `prefix` (with values unless `keys_only`), read page by page at one
    /// revision, so a long listing is consistent and no reply outgrows the message limit.
    pub(crate) async fn scan(
        &self,
        op: &str,
        prefix: &str,
        keys_only: bool,
    ) -> Result<Vec<KeyValue>, FleetError> {
        let end = prefix_end(prefix.as_bytes());
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut all = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(SCAN_PAGE);
            if keys_only {
                options = options.with_keys_only();
            }
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut response = self.get(op, from.clone(), Some(options)).await?;
            if revision == 0 {
                revision = response.header().map_or(0, |h| h.revision());
            }
            let more = response.more();
            let page = response.take_kvs();
            let Some(last) = page.last() else {
                return Ok(all);
            };
            from = last.key().to_vec();
            from.push(0);
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Writes `key`, retrying while etcd is briefly unavailable (a put is safe to repeat).
    pub(crate) async fn put(
        &self,
        op: &str,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse, FleetError> {
        let (key, value) = (key.into(), value.into());
        self.retry(op, |mut client| {
            let (key, value, options) = (key.clone(), value.clone(), options.clone());
            async move { client.put(key, value, options).await }
        })
        .await
    }

    /// Runs a transaction, retrying while etcd is briefly unavailable: only for transactions
    /// whose callers re-read and try again when the compare fails (a repeat of one that landed
    /// then fails its compare, and the caller sees the new state).
    pub(crate) async fn txn(&self, op: &str, txn: Txn) -> Result<TxnResponse, FleetError> {
        self.retry(op, |mut client| {
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })
        .await
    }

    /// Runs a transaction once. A reply that never came (a timeout, a connection lost, a
    /// leader change mid-request) is [`Sent::Unanswered`]: the transaction may or may not have
    /// landed, and the caller must find out. An error etcd answered with means it did not land.
    pub(crate) async fn txn_once(&self, op: &str, txn: Txn) -> Result<Sent, FleetError> {
        match tokio::time::timeout(self.deadline, self.client().txn(txn)).await {
            Ok(Ok(response)) => Ok(Sent::Answered(response)),
            Ok(Err(error)) if is_transient(&error) => {
                Ok(Sent::Unanswered(FleetError::etcd(op, &error)))
            }
            Ok(Err(error)) => Err(FleetError::etcd(op, &error)),
            Err(_) => Ok(Sent::Unanswered(FleetError::Timeout {
                op: op.to_owned(),
                after: self.deadline,
            })),
        }
    }

    /// Starts a watch, retrying while etcd is briefly unavailable.
    pub(crate) async fn watch(
        &self,
        op: &str,
        key: impl Into<Vec<u8>>,
        options: WatchOptions,
    ) -> Result<WatchStream, FleetError> {
        let key = key.into();
        self.retry(op, |mut client| {
            let (key, options) = (key.clone(), options.clone());
            async move { client.watch(key, Some(options)).await }
        })
        .await
    }

    /// Runs an etcd request that is safe to repeat (a read, a put of a chunk, a
    /// compare-and-swap whose caller re-reads on failure), repeating it while etcd is
    /// unavailable for a moment (a member died, a leader election is under way), all within the
    /// deadline.
    pub(crate) async fn retry<T, F, M>(&self, op: &str, mut request: M) -> Result<T, FleetError>
    where
        M: FnMut(Client) -> F,
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        let give_up = tokio::time::Instant::now() + self.deadline;
        let mut pause = Duration::from_millis(20);
        loop {
            match tokio::time::timeout_at(give_up, request(self.client())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if is_transient(&error) => {
                    if tokio::time::Instant::now() + pause >= give_up {
                        return Err(FleetError::etcd(op, &error));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Ok(Err(error)) => return Err(FleetError::etcd(op, &error)),
                Err(_) => {
                    return Err(FleetError::Timeout {
                        op: op.to_owned(),
                        after: self.deadline,
                    });
                }
            }
        }
    }
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xff bytes: every key from the prefix on.
    vec![0]
}

/// What became of a transaction sent once.
pub(crate) enum Sent {
    /// etcd answered: the response says whether the compare held.
    Answered(TxnResponse),
    /// No answer: it may or may not have landed.
    Unanswered(FleetError),
}

/// True for the errors that say "not now" rather than "no": no leader for a moment, a member
/// unreachable, a connection broken.
pub(crate) fn is_transient(error: &etcd_client::Error) -> bool {
    // gRPC status codes (tonic's `Code` discriminants, which etcd-client does not re-export).
    const CANCELLED: i32 = 1;
    const UNKNOWN: i32 = 2;
    const ABORTED: i32 = 10;
    const UNAVAILABLE: i32 = 14;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code() as i32,
            CANCELLED | UNKNOWN | ABORTED | UNAVAILABLE
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_at_its_last_byte_plus_one() {
        assert_eq!(prefix_end(b"/p/apps/"), b"/p/apps0");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), [0]);
    }
}
