//! `storage`: export, import, copy, inspect and check any store by URL.
//!
//! Run `storage --help`; the URL forms are in the crate docs and README.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes.
            let mut line = e.to_string();
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                let text = s.to_string();
                if !line.contains(&text) {
                    line.push_str(": ");
                    line.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
