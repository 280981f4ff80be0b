//! Tracing set-up: an env-filter, text or JSON lines on stderr, and optionally OTLP export.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::{ConfigError, LogFormat, TelemetryConfig};

/// Keeps trace export alive; dropping it flushes and stops the exporter. Hold it in `main`.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, ConfigError> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| ConfigError::LogFilter {
        filter: config.log_filter.clone(),
        reason: e.to_string(),
    })?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match config.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    #[cfg(feature = "otel")]
    let (otel, provider) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (layer, provider) = otel::layer(endpoint)?;
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "otel"))]
    if let Some(endpoint) = &config.otlp_endpoint {
        return Err(ConfigError::Otel {
            endpoint: endpoint.clone(),
            reason: "this build has no OpenTelemetry support; rebuild with `--features otel` or unset OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        });
    }
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = registry.try_init();
    Ok(TelemetryGuard {
        #[cfg(feature = "otel")]
        provider,
    })
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{SpanExporter, WithExportConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use crate::ConfigError;

    /// The OpenTelemetry layer and its provider, exporting in batches to `endpoint` over HTTP.
    pub(super) fn layer<S>(
        endpoint: &str,
    ) -> Result<(impl tracing_subscriber::Layer<S>, SdkTracerProvider), ConfigError>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(traces)
            .build()
            .map_err(|e| ConfigError::Otel {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("orders").build())
            .build();
        let tracer = provider.tracer("orders");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>) -> TelemetryConfig {
        TelemetryConfig {
            log_filter: "info".into(),
            log_format: LogFormat::Text,
            otlp_endpoint: endpoint.map(str::to_owned),
        }
    }

    #[test]
    fn a_bad_filter_is_a_clear_error() {
        let mut bad = config(None);
        bad.log_filter = "orders=loud".into();
        let message = init(&bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("orders=loud"), "{message}");
    }

    /// Without the `otel` feature an endpoint is refused. CI runs this crate's tests once without
    /// features too (`.ci/run`), since `--all-features` compiles this test out.
    #[cfg(not(feature = "otel"))]
    #[test]
    fn an_endpoint_without_the_feature_is_refused() {
        let message = init(&config(Some("http://127.0.0.1:4318")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("--features otel"), "{message}");
    }

    #[cfg(feature = "otel")]
    #[test]
    fn with_the_feature_an_endpoint_exports_spans_to_it() {
        let collector = collector::Collector::start();
        let guard = init(&config(Some(&collector.endpoint()))).unwrap();
        tracing::info_span!("telemetry_test_span_7f3a")
            .in_scope(|| tracing::info!("inside a span"));
        drop(guard); // flushes the batch to the collector
        let request = collector.next_request(std::time::Duration::from_secs(30));
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/traces");
        let contains = |needle: &[u8]| request.body.windows(needle.len()).any(|w| w == needle);
        // OTLP protobuf carries strings as raw bytes: the span name and the service name.
        assert!(contains(b"telemetry_test_span_7f3a"), "{request:?}");
        assert!(contains(b"orders"), "{request:?}");
    }

    /// A one-thread HTTP server that answers 200 to every request and hands each over.
    #[cfg(feature = "otel")]
    mod collector {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;
        use std::sync::mpsc;
        use std::time::Duration;

        #[derive(Debug)]
        pub(super) struct Request {
            pub(super) method: String,
            pub(super) path: String,
            pub(super) body: Vec<u8>,
        }

        pub(super) struct Collector {
            port: u16,
            requests: mpsc::Receiver<Request>,
        }

        impl Collector {
            pub(super) fn start() -> Self {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = listener.local_addr().unwrap().port();
                let (sender, requests) = mpsc::channel();
                std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        let Ok(mut stream) = stream else { return };
                        let Some(request) = read_request(&mut stream) else {
                            continue;
                        };
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        if sender.send(request).is_err() {
                            return;
                        }
                    }
                });
                Self { port, requests }
            }

            pub(super) fn endpoint(&self) -> String {
                format!("http://127.0.0.1:{}", self.port)
            }

            pub(super) fn next_request(&self, deadline: Duration) -> Request {
                self.requests.recv_timeout(deadline).unwrap_or_else(|_| {
                    panic!("no export reached the collector within {deadline:?}")
                })
            }
        }

        fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let mut parts = line.split_whitespace();
            let method = parts.next()?.to_owned();
            let path = parts.next()?.to_owned();
            let mut length = 0;
            loop {
                line.clear();
                reader.read_line(&mut line).ok()?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok()?;
            Some(Request { method, path, body })
        }
    }
}
