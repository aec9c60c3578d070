//! The machine description: CPU, cores, RAM, kernel, toolchain, load.

use std::process::Command;

use crate::results::Machine;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

/// The 1, 5 and 15 minute load averages.
pub fn load() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Describes this machine now.
pub fn describe() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let ram = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        ram,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        rustc: run("rustc", &["-V"]),
        redis: run("redis-server", &["--version"]),
        load_start: load(),
        load_end: String::new(),
        started: run("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]),
        duration_s: 0.0,
    }
}
