//! The `speck` command. All behaviour lives in the library; see `cli`.

mod cli;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("speck: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
