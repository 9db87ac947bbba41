//! `handler local`: the whole pipeline on one machine, with this process playing the Functions host.
use crate::config::Config;
use std::path::PathBuf;
use std::time::Duration;

pub struct Options {
    pub every: Option<Duration>,
    pub ticks: Option<u64>,
    pub app_root: PathBuf,
}

pub async fn run(_config: Config, _options: Options) -> Result<(), Box<dyn std::error::Error>> {
    todo!()
}
