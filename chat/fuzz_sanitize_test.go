package chat_test

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store/memory"
)

// The allow-list of docs/protocol.md#content, written out again so that
// the fuzz target checks the sanitiser against the documented rule, not
// against its own configuration.
var (
	allowedTags = map[string]bool{"b": true, "i": true, "strong": true, "em": true, "a": true, "span": true,
		"p": true, "ul": true, "ol": true, "li": true, "br": true}
	allowedAttrs   = map[string]bool{"class": true, "id": true}
	allowedAAttrs  = map[string]bool{"href": true, "title": true, "target": true}
	allowedSchemes = map[string]bool{"http": true, "https": true, "mailto": true}
)

// checkSanitized reports what in out breaks the allow-list: a tag, an
// attribute or an href scheme outside it, a comment or a doctype.
func checkSanitized(out string) string {
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			return ""
		case html.CommentToken, html.DoctypeToken:
			return "a " + tt.String() + " token: " + string(z.Raw())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if !allowedTags[tok.Data] {
				return "tag " + tok.Data
			}
			for _, a := range tok.Attr {
				if a.Namespace != "" || !(allowedAttrs[a.Key] || tok.Data == "a" && allowedAAttrs[a.Key]) {
					return "attribute " + a.Key + " on " + tok.Data
				}
				if a.Key == "href" {
					u, err := url.Parse(a.Val)
					if err != nil {
						return "unparseable href " + a.Val
					}
					if u.Scheme != "" && !allowedSchemes[strings.ToLower(u.Scheme)] {
						return "href scheme " + u.Scheme
					}
				}
			}
		}
	}
}

// FuzzSanitize: whatever the input, the sanitiser's output keeps no tag,
// attribute or URL scheme outside the allow-list of
// docs/protocol.md#content, and sanitising it again changes nothing. The
// seed corpus is testdata/fuzz/FuzzSanitize; `go test` runs only the seeds
// (fuzz with -fuzz=FuzzSanitize).
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		`<p onclick="alert(1)">Click me</p>`,
		`<a href="javascript:alert(1)">link</a>`,
		`<scr<script>ipt>alert(1)</scr</script>ipt>`,
		`<a href="https://example.com" title='"q"' target="_blank">go</a>`,
		`say "hi" & 'bye' 1 < 2 &nbsp; &amp;lt;`,
		`<textarea><p>x</p></textarea><style>p{}</style>`,
	} {
		f.Add(s)
	}
	svc := chat.New(chat.Config{Store: memory.New()})
	f.Fuzz(func(t *testing.T, in string) {
		out := svc.Sanitize(in)
		if bad := checkSanitized(out); bad != "" {
			t.Fatalf("Sanitize(%q) = %q keeps %s", in, out, bad)
		}
		if again := svc.Sanitize(out); again != out {
			t.Fatalf("Sanitize is not idempotent:\n in:    %q\n once:  %q\n twice: %q", in, out, again)
		}
	})
}
