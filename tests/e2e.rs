//! The end-to-end tests, one test binary: the real `agentos-host` binary driven on real world
//! directories (real redb files, components compiled from `components/`, servers on
//! 127.0.0.1), each test ending with replay + verify of the world it produced. One module per
//! area; `common` holds the helpers they share.

mod common;

mod air;
mod compile;
mod console;
mod counter;
mod crash;
mod demo;
mod faulty;
mod fixture;
mod governance;
mod hello;
mod keys;
mod llm;
mod mcp;
mod messaging;
mod plans;
mod proofs;
mod serve;
mod service;
mod side_by_side;
mod snapshots;
mod tamper;
mod timers;
mod tool_calls;
