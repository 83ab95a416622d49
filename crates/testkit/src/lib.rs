#![doc = include_str!("../README.md")]

pub mod chaos;
pub mod data;
mod harness;

pub use harness::{TestApp, TestOptions};
