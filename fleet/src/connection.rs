//! One connection to an etcd cluster, shared by the store, members, elections and watches: the
//! client, the key prefix everything lives under, and the deadline every request is held to.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::address::EtcdAddress;
use crate::error::{FleetError, describe_etcd};

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

    /// Runs one etcd request for `op` under the deadline, mapping its error.
    pub(crate) async fn run<T, F>(&self, op: &str, request: F) -> Result<T, FleetError>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.deadline, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(FleetError::etcd(op, &error)),
            Err(_) => Err(FleetError::Timeout {
                op: op.to_owned(),
                after: self.deadline,
            }),
        }
    }
}
