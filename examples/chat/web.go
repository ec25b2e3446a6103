package main

import "embed"

// webFS holds the web page, served at /: HTML, CSS and a script of its own
// (no build step), and in web/chatmux-client/ the official JavaScript
// client, @chatmux/client, as ES modules made from clients/js by
// `npm run bundle` (committed; its tests check that the copy is what the
// sources give).
//
//go:embed web
var webFS embed.FS
