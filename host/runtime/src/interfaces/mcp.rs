//! The guest's side of `mcp`: the tools its grants allow, and calls of them.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the servers, their limits and the conversion of results are `agentos_effects::mcp`.

use crate::bindings::agentos::core::mcp::{Content, Host, StoredContent, ToolInfo, ToolOutput};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::mcp::McpContent;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

/// Longest arguments text a call may send.
pub const ARGUMENTS_MAX_BYTES: usize = 1024 * 1024;
/// Longest server or tool name (MCP's names are at most 128 characters).
pub const NAME_MAX_BYTES: usize = 128;

impl Host for EffectGate {
    fn list_tools(&mut self, server: Option<String>) -> wasmtime::Result<Result<Vec<ToolInfo>, EffectError>> {
        if server.as_ref().is_some_and(|s| s.len() > NAME_MAX_BYTES) {
            wasmtime::bail!("mcp list-tools: a server name longer than {NAME_MAX_BYTES} bytes");
        }
        Ok(match self.call(EffectRequest::McpListTools { server })? {
            Ok(EffectResponse::McpTools(tools)) => Ok(tools
                .into_iter()
                .map(|tool| ToolInfo {
                    server: tool.server,
                    name: tool.name,
                    description: tool.description,
                    input_schema: tool.input_schema,
                    read_only: tool.read_only,
                    idempotent: tool.idempotent,
                })
                .collect()),
            Ok(other) => wasmtime::bail!("journal holds a non-tool-list outcome for an mcp list-tools call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }

    fn call_tool(
        &mut self,
        server: String,
        tool: String,
        arguments: String,
    ) -> wasmtime::Result<Result<ToolOutput, EffectError>> {
        if server.len() > NAME_MAX_BYTES || tool.len() > NAME_MAX_BYTES {
            wasmtime::bail!("mcp call: a server or tool name longer than {NAME_MAX_BYTES} bytes");
        }
        if arguments.len() > ARGUMENTS_MAX_BYTES {
            wasmtime::bail!(
                "mcp call of {server}/{tool}: {} bytes of arguments exceed the limit of {ARGUMENTS_MAX_BYTES}",
                arguments.len()
            );
        }
        Ok(
            match self.call(EffectRequest::McpCall {
                server,
                tool,
                arguments,
            })? {
                Ok(EffectResponse::McpResult(result)) => Ok(ToolOutput {
                    content: result
                        .content
                        .into_iter()
                        .map(|part| match part {
                            McpContent::Text(text) => Content::Text(text),
                            McpContent::Stored {
                                kind,
                                uri,
                                mime_type,
                                digest,
                                size,
                            } => Content::Stored(StoredContent {
                                kind,
                                uri,
                                mime_type,
                                digest,
                                size,
                            }),
                        })
                        .collect(),
                    structured: result.structured,
                    is_error: result.is_error,
                }),
                Ok(other) => wasmtime::bail!("journal holds a non-tool outcome for an mcp call: {other:?}"),
                Err(failure) => Err(failure.into()),
            },
        )
    }
}
