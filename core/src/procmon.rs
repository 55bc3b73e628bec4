//! `ProcessMonitor`: keeps child processes running (being written).
