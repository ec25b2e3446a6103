package chat_test

import (
	"testing"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store/memory"
)

// TestSanitizeVectors checks every conformance vector of docs/protocol.md#content:
// the output equals bleach's byte for byte.
func TestSanitizeVectors(t *testing.T) {
	svc := chat.New(chat.Config{Store: memory.New()})
	for _, v := range []struct{ in, want string }{
		{`<script>alert('xss')</script>`, `alert('xss')`},
		{`<p>Hello<script>alert(1)</script></p>`, `<p>Helloalert(1)</p>`},
		{`<p onclick="alert(1)">Click me</p>`, `<p>Click me</p>`},
		{`<a href="javascript:alert(1)">link</a>`, `<a>link</a>`},
		{`<a href="JaVaScRiPt:alert(1)">link</a>`, `<a>link</a>`},
		{`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`, `<a>x</a>`},
		{`<img src="x" onerror="alert(1)">`, ``},
		{`<svg onload="alert(1)"></svg>`, ``},
		{`<p style="background:url(javascript:alert(1))">Test</p>`, `<p>Test</p>`},
		{`<!--<script>alert(1)</script>-->`, ``},
		{`<scr<script>ipt>alert(1)</scr</script>ipt>`, `ipt&gt;alert(1)ipt&gt;`},
		{`<ul><li>Item<script>alert(1)</script></li></ul>`, `<ul><li>Itemalert(1)</li></ul>`},
		{`<iframe src="https://evil.com"></iframe>`, ``},
		{`<a href="https://example.com" onclick="alert(1)" class="x">ok</a>`, `<a href="https://example.com" class="x">ok</a>`},
		{`<p id="test" class="safe">hello</p>`, `<p id="test" class="safe">hello</p>`},
		{`&lt;script&gt;alert(1)&lt;/script&gt;`, `&lt;script&gt;alert(1)&lt;/script&gt;`},
		{`<p onclick="alert(1)"><a href="javascript:alert(2)">x</a><script>alert(3)</script></p>`, `<p><a>x</a>alert(3)</p>`},
		{`<a href="https://example.com" target="_blank">go</a>`, `<a href="https://example.com" target="_blank">go</a>`},
		{`<p data-test="x" aria-label="y">hi</p>`, `<p>hi</p>`},
		{`Hello<br><script>alert(1)</script>World`, `Hello<br>alert(1)World`},
		// Beyond the table: bleach's text escaping and allowed schemes.
		{`say "hi" & 'bye' 1 < 2`, `say "hi" &amp; 'bye' 1 &lt; 2`},
		{`<a href="mailto:a@b.c">m</a><a href="/rel">r</a>`, `<a href="mailto:a@b.c">m</a><a href="/rel">r</a>`},
		{`<strong>s</strong><em>e</em><span class="c">x</span><ol><li>1</li></ol>`, `<strong>s</strong><em>e</em><span class="c">x</span><ol><li>1</li></ol>`},
		{`<style>p{}</style>x`, `p{}x`},
		// Markup inside a script is text, never markup.
		{`<script><img src=x onerror=alert(1)></script>`, `&lt;img src=x onerror=alert(1)&gt;`},
		{`<div><h1>t</h1></div>`, `t`},
	} {
		if got := svc.Sanitize(v.in); got != v.want {
			t.Errorf("Sanitize(%q)\n got %q\nwant %q", v.in, got, v.want)
		}
	}
}

// TestSanitizeDifferences documents where the output differs from bleach's
// (the package's) and why: equivalent HTML, not a security difference.
func TestSanitizeDifferences(t *testing.T) {
	svc := chat.New(chat.Config{Store: memory.New()})
	for _, v := range []struct{ in, want, bleach, why string }{
		{`<a title="a&quot;b'c">q</a>`, `<a title="a&#34;b&#39;c">q</a>`, `<a title="a&quot;b'c">q</a>`,
			"bluemonday escapes quotes in attribute values as numeric entities"},
	} {
		if got := svc.Sanitize(v.in); got != v.want {
			t.Errorf("Sanitize(%q) = %q, want %q (bleach: %q; %s)", v.in, got, v.want, v.bleach, v.why)
		}
	}
}
