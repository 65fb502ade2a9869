//! A tool's result as the `mcp` interface returns it: text stays text; images, audio and
//! embedded resources go to the world's blob store and are returned by digest; links to
//! resources are returned as text naming them. The result's size (text and decoded bytes) is
//! checked against the server's limit before anything is stored.

use super::McpResult;
use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde::{Deserialize, Serialize};

/// One part of a tool's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum McpContent {
    Text(String),
    /// Bytes in the blob store.
    Stored {
        /// `image`, `audio` or `resource`.
        kind: String,
        uri: Option<String>,
        mime_type: Option<String>,
        digest: String,
        size: u64,
    },
}

enum Part {
    Text(String),
    Bytes {
        kind: &'static str,
        uri: Option<String>,
        mime_type: Option<String>,
        bytes: Vec<u8>,
    },
}

pub(super) fn convert(
    server: &str,
    tool: &str,
    result: CallToolResult,
    max_bytes: u64,
    store: &mut dyn FnMut(&[u8]) -> String,
) -> Result<McpResult, String> {
    let undecodable = |what: &str| format!("MCP server `{server}` answered `{tool}` with {what} that is not base64");
    let decode = |data: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| undecodable(what))
    };
    let mut parts = Vec::new();
    for block in result.content {
        parts.push(match block {
            ContentBlock::Text(text) => Part::Text(text.text),
            ContentBlock::Image(image) => Part::Bytes {
                kind: "image",
                uri: None,
                mime_type: Some(image.mime_type.clone()),
                bytes: decode(&image.data, "an image")?,
            },
            ContentBlock::Audio(audio) => Part::Bytes {
                kind: "audio",
                uri: None,
                mime_type: Some(audio.mime_type.clone()),
                bytes: decode(&audio.data, "audio")?,
            },
            ContentBlock::Resource(embedded) => match embedded.resource {
                ResourceContents::TextResourceContents {
                    uri, mime_type, text, ..
                } => Part::Bytes {
                    kind: "resource",
                    uri: Some(uri),
                    mime_type,
                    bytes: text.into_bytes(),
                },
                ResourceContents::BlobResourceContents {
                    uri, mime_type, blob, ..
                } => Part::Bytes {
                    kind: "resource",
                    uri: Some(uri),
                    mime_type,
                    bytes: decode(&blob, "a resource")?,
                },
                _ => Part::Text("(a resource of a kind this host does not read)".into()),
            },
            ContentBlock::ResourceLink(link) => Part::Text(format!("resource link: {} ({})", link.uri, link.name)),
            _ => Part::Text("(content of a kind this host does not read)".into()),
        });
    }
    let structured = result.structured_content.map(|value| value.to_string());
    let size: u64 = parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => text.len() as u64,
            Part::Bytes { bytes, .. } => bytes.len() as u64,
        })
        .sum::<u64>()
        + structured.as_ref().map_or(0, |s| s.len() as u64);
    if size > max_bytes {
        return Err(format!(
            "MCP server `{server}` answered `{tool}` with {size} bytes, more than its max_result_bytes ({max_bytes})"
        ));
    }
    let content = parts
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => McpContent::Text(text),
            Part::Bytes {
                kind,
                uri,
                mime_type,
                bytes,
            } => McpContent::Stored {
                kind: kind.to_string(),
                uri,
                mime_type,
                digest: store(&bytes),
                size: bytes.len() as u64,
            },
        })
        .collect();
    Ok(McpResult {
        content,
        structured,
        is_error: result.is_error == Some(true),
        stderr: Vec::new(),
    })
}
