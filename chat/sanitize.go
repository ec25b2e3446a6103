package chat

import (
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// sanitizeTags are the tags of the allow-list of docs/protocol.md#content.
var sanitizeTags = []string{"b", "i", "strong", "em", "a", "span", "p", "ul", "ol", "li", "br"}

// newPolicy returns the sanitiser's allow-list of docs/protocol.md#content (the
// package's bleach configuration): tags b, i, strong, em, a, span, p, ul,
// ol, li, br; attributes href, title and target on a, class and id on
// every allowed tag; URL schemes http, https and mailto (relative URLs
// allowed). Disallowed tags are removed and their text kept, including the
// text of script and style elements, as bleach's strip=True does.
func newPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements(sanitizeTags...)
	p.AllowNoAttrs().OnElements(sanitizeTags...)
	p.AllowAttrs("href", "title", "target").OnElements("a")
	p.AllowAttrs("class", "id").OnElements(sanitizeTags...)
	p.AllowURLSchemes("http", "https", "mailto")
	p.AllowRelativeURLs(true)
	p.RequireParseableURLs(true)
	// bleach keeps the text of every stripped element; bluemonday drops
	// the content of some by default (script and style never reach it:
	// see rawTextToText).
	p.AllowElementsContent("object", "frameset", "nostyle")
	return p
}

// Sanitize cleans message content with the allow-list of
// docs/protocol.md#content.
// It is applied to message content on send and on edit; custom events that
// store HTML should use it too.
func (s *Service) Sanitize(content string) string {
	return reescapeText(s.policy.Sanitize(rawTextToText(content)))
}

// rawTextElements are the elements whose content an HTML parser reads as
// raw text (or RCDATA), not as markup.
var rawTextElements = map[string]bool{
	"script": true, "style": true, "iframe": true, "noembed": true, "noframes": true,
	"noscript": true, "plaintext": true, "textarea": true, "title": true, "xmp": true,
}

// rawTextToText removes the tags of raw-text elements (script, style, ...)
// and turns their content into escaped text, which is what bleach with
// strip=True keeps of them (html5lib reads their content as text).
// bluemonday would drop that content instead, or, with AllowUnsafe, copy
// it unescaped. Everything else is copied byte for byte, for bluemonday to
// sanitise.
func rawTextToText(in string) string {
	if !strings.Contains(in, "<") {
		return in
	}
	z := html.NewTokenizer(strings.NewReader(in))
	var b strings.Builder
	b.Grow(len(in))
	raw := "" // the raw-text element we are inside, if any
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			if rawTextElements[string(name)] {
				if tt == html.StartTagToken {
					raw = string(name)
				}
				continue
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if rawTextElements[string(name)] {
				raw = ""
				continue
			}
		case html.TextToken:
			if raw != "" {
				b.WriteString(textEscaper.Replace(string(z.Text())))
				continue
			}
		}
		b.Write(z.Raw())
	}
}

// reescapeText rewrites the text of bluemonday's output the way bleach
// (html5lib's serializer) escapes text: only &, < and > (and a no-break
// space) are entities; quotes stay as typed. Tags are copied as bluemonday
// wrote them.
func reescapeText(out string) string {
	if !strings.Contains(out, "&#") && !strings.Contains(out, "\u00a0") {
		return out
	}
	z := html.NewTokenizer(strings.NewReader(out))
	var b strings.Builder
	b.Grow(len(out))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			b.WriteString(textEscaper.Replace(string(z.Text())))
		default:
			b.Write(z.Raw())
		}
	}
}

var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;")
