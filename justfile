# Development recipes: each one is a command you can also type yourself.

# Run every test (the README's test command).
test:
    cargo test

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build the example agents as wasm components.
components:
    cargo build --release --target wasm32-wasip2 -p counter -p hello -p faulty -p notifier -p summarizer -p ticker -p builder -p greeter -p reviewer -p editor

# Run the demo world end to end (init, send, replay, verify).
demo:
    cargo run -p agentos-host -- demo

# Stepper throughput vs raw wasmtime calls and raw redb commits.
bench:
    cargo run --release -p agentos-host -- bench

# Everything CI checks.
ci:
    bash .ci/run
