package main

import "embed"

// webFS holds the web page (plain HTML, CSS and JavaScript; no build step),
// served at /.
//
//go:embed web
var webFS embed.FS
