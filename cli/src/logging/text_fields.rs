//! How an event's fields read in a text log line: the message, then each field the message
//! does not already say. `listening on 127.0.0.1:7001` carries `address` for JSON lines, and
//! in text it would only repeat it; `connection closed` says little, so its `peer`, `bytes_in`
//! and `duration_ms` follow as `key=value`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The text formatter of fields; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct TextFields;

#[derive(Default)]
struct Collected {
    message: Option<String>,
    /// Each other field: its name, its value, and how a message would round it (floats).
    others: Vec<(&'static str, String, Option<String>)>,
}

impl Visit for Collected {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.others
            .push((field.name(), value.to_string(), Some(format!("{value:.1}"))));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.others.push((field.name(), value.to_owned(), None));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.others.push((field.name(), text, None));
        }
    }
}

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut collected = Collected::default();
        fields.record(&mut collected);
        let message = collected.message.unwrap_or_default();
        writer.write_str(&message)?;
        for (name, value, rounded) in collected.others {
            let said = message.contains(&value)
                || rounded.is_some_and(|rounded| message.contains(&rounded));
            if said {
                continue;
            }
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(writer, " {name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_the_message_says_are_not_repeated() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(TextFields)
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let address = "127.0.0.1:7001";
            tracing::info!(service = "echo", address, "echo listening on {address}");
            tracing::info!(peer = "127.0.0.1:5000", bytes_in = 2, "connection closed");
            let millis = 7.751_189;
            tracing::info!(millis, "saved in {millis:.1}ms");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].trim(), "INFO echo listening on 127.0.0.1:7001");
        assert_eq!(
            lines[1].trim(),
            "INFO connection closed peer=127.0.0.1:5000 bytes_in=2"
        );
        assert_eq!(lines[2].trim(), "INFO saved in 7.8ms");
    }
}
