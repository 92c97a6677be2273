//! Asking the user: passphrases and codes come from the controlling terminal (`/dev/tty`), never
//! from argv or the environment; scripts and tests pass `--input-fd N` and answer each prompt
//! with one line on that descriptor, in order.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Where answers come from.
pub enum Prompter {
    /// The controlling terminal.
    Tty,
    /// Lines on a file descriptor.
    Fd(BufReader<Box<dyn Read + Send>>),
    /// Neither: any prompt fails with an explanation.
    None,
}

/// Whether this process has a controlling terminal it can prompt on.
pub fn have_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

impl Prompter {
    /// Answers from `--input-fd` when given, else the terminal when there is one.
    pub fn new(input_fd: Option<u32>) -> Result<Self> {
        if let Some(fd) = input_fd {
            // Standard input is read as it is: a socket (what Node and Python hand a child)
            // cannot be reopened through /dev/fd. Other descriptors are reopened there, which
            // needs no unsafe code.
            let input: Box<dyn Read + Send> = match fd {
                0 => Box::new(std::io::stdin()),
                _ => Box::new(
                    File::open(format!("/dev/fd/{fd}"))
                        .with_context(|| format!("cannot read --input-fd {fd}"))?,
                ),
            };
            return Ok(Prompter::Fd(BufReader::new(input)));
        }
        Ok(if have_tty() {
            Prompter::Tty
        } else {
            Prompter::None
        })
    }

    /// The controlling terminal only, whatever `--input-fd` says: for questions a program must
    /// not answer for itself (approvals), since whoever started `keyward` chose its descriptors.
    pub fn terminal() -> Self {
        if have_tty() {
            Prompter::Tty
        } else {
            Prompter::None
        }
    }

    /// Whether a person can be asked (a terminal, not a script).
    pub fn interactive(&self) -> bool {
        matches!(self, Prompter::Tty)
    }

    /// Whether any prompt can be answered.
    pub fn available(&self) -> bool {
        !matches!(self, Prompter::None)
    }

    fn read_fd_line(
        reader: &mut BufReader<Box<dyn Read + Send>>,
        what: &str,
    ) -> Result<Zeroizing<String>> {
        let mut line = Zeroizing::new(String::new());
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from --input-fd"))?;
        if n == 0 {
            bail!("--input-fd ended before the {what} was given");
        }
        while line.ends_with('\n') || line.ends_with('\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Asks for a secret (not echoed).
    pub fn secret(&mut self, prompt: &str, what: &str) -> Result<SecretString> {
        match self {
            Prompter::Tty => {
                let s = rpassword::prompt_password(prompt)
                    .with_context(|| format!("cannot read the {what} from the terminal"))?;
                Ok(SecretString::from(s))
            }
            Prompter::Fd(r) => Ok(SecretString::from(
                Self::read_fd_line(r, what)?.as_str().to_owned(),
            )),
            Prompter::None => Err(no_input(what)),
        }
    }

    /// Asks for a visible answer.
    pub fn line(&mut self, prompt: &str, what: &str) -> Result<String> {
        match self {
            Prompter::Tty => {
                let mut tty = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/tty")
                    .context("cannot open the terminal")?;
                tty.write_all(prompt.as_bytes())?;
                tty.flush()?;
                let mut line = String::new();
                BufReader::new(tty).read_line(&mut line)?;
                Ok(line.trim().to_owned())
            }
            Prompter::Fd(r) => Ok(Self::read_fd_line(r, what)?.trim().to_owned()),
            Prompter::None => Err(no_input(what)),
        }
    }

    /// Asks a yes/no question; anything but y/yes is no.
    pub fn confirm(&mut self, prompt: &str) -> Result<bool> {
        let a = self.line(&format!("{prompt} [y/N] "), "answer")?;
        Ok(matches!(a.to_ascii_lowercase().as_str(), "y" | "yes"))
    }
}

fn no_input(what: &str) -> anyhow::Error {
    anyhow!("cannot ask for the {what}: there is no terminal (run it in a terminal, or pass answers with --input-fd N)")
}

/// Runs a terminal prompt with an upper bound on how long it may wait. The blocked reader thread
/// is abandoned on timeout; the process exits soon after.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(_) => Err(anyhow!(
            "no unlock within {} s: run `keyward unlock` and retry",
            limit.as_secs()
        )),
    }
}
