//! A tiny SMTP server for tests, on a free port of 127.0.0.1: it speaks just enough SMTP for a
//! client to hand it a message (220 greeting, EHLO/HELO, MAIL, RCPT, DATA … `.`, QUIT) and
//! records every accepted message. It can answer the first `fail_first` MAIL commands with
//! `451` (a transient refusal) to exercise the sender's retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    fail_remaining: AtomicUsize,
    mail_commands: AtomicUsize,
}

pub struct SmtpSink {
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts a sink that refuses the first `fail_first` MAIL commands with `451`.
    pub async fn start(fail_first: usize) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("sink address").port();
        let state = Arc::new(State {
            fail_remaining: AtomicUsize::new(fail_first),
            ..State::default()
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-conversation only ends its own session.
                    let _ = session(stream, &state).await;
                });
            }
        });
        SmtpSink { port, state, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("sink lock").clone()
    }

    /// MAIL commands seen, refused or not.
    pub fn mail_commands(&self) -> usize {
        self.state.mail_commands.load(Ordering::SeqCst)
    }
}

fn address_of(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].to_owned()
}

async fn session(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    writer.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink.test\r\n",
            "MAIL" => {
                state.mail_commands.fetch_add(1, Ordering::SeqCst);
                let refuse = state
                    .fail_remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    b"451 4.3.0 try again later\r\n"
                } else {
                    from = address_of(&command);
                    to.clear();
                    b"250 2.1.0 ok\r\n"
                }
            }
            "RCPT" => {
                to.push(address_of(&command));
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                state.received.lock().expect("sink lock").push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not recognized\r\n",
        };
        writer.write_all(reply).await?;
    }
}
