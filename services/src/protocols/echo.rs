//! The Echo protocol (RFC 862): every byte received is sent back.

use std::io;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ProtocolFactory;
use crate::net::Connection;

/// RFC 862 Echo: sends back whatever it receives until the peer closes, then closes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {}

#[typetag::serde(name = Echo::TAG)]
#[async_trait]
impl ProtocolFactory for Echo {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let (stream, shutdown) = connection.into_stream();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let echo = async {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let read = reader.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                writer.write_all(&buffer[..read]).await?;
            }
            writer.shutdown().await
        };
        tokio::select! {
            result = echo => result,
            () = shutdown.cancelled() => Ok(()),
        }
    }
}

rtwisted_core::register_type!(factory Echo = "rtwisted.Echo", version 1);

#[typetag::serde(name = Echo::TAG)]
#[async_trait]
impl super::DatagramProtocol for Echo {
    async fn datagram(&self, datagram: &[u8], _peer: std::net::SocketAddr) -> Option<Vec<u8>> {
        Some(datagram.to_vec())
    }
}
