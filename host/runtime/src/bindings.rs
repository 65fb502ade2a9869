//! The one `bindgen!` over `wit/agentos.wit`: host traits for the effect interfaces and typed
//! access to the `lifecycle` export. Everything else imports the generated types from here.

wasmtime::component::bindgen!({
    world: "agent",
    path: "../../wit",
    imports: { default: trappable },
});
