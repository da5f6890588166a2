package html

import (
	"bytes"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"
)

var disarmAll = Settings{Script: Disarm, IFrame: Disarm, Form: Disarm, Object: Disarm, WebBugs: Disarm}

func TestRewrite(t *testing.T) {
	cases := []struct {
		name, in, want string
		kind           Kind
	}{
		{"script element", `<p>a</p><script type="text/javascript">alert("<b>x</b>")</script><p>b</p>`, `<p>a</p><p>b</p>`, KindScript},
		{"script upper case", `x<SCRIPT>evil()</SCRIPT >y`, `xy`, KindScript},
		{"self-closing script", `x<script src="http://e.example/a.js"/>y`, `xy`, KindScript},
		{"event attribute", `<body onload="go()" bgcolor=white><a href="http://ok.example/" onClick='x()'>l</a>`, `<body bgcolor="white"><a href="http://ok.example/">l</a>`, KindScript},
		{"javascript url", `<a href="javascript:alert(1)">l</a>`, `<a>l</a>`, KindScript},
		{"javascript url hidden", "<a href=\" JaVa\tScRiPt:alert(1)\" title=t>l</a>", `<a title="t">l</a>`, KindScript},
		{"vbscript url", `<img src="vbscript:msgbox(1)">`, `<img>`, KindScript},
		{"meta refresh", `<head><meta http-equiv="Refresh" content="0; URL='javascript:go()'"><meta charset=utf-8></head>`, `<head><meta charset=utf-8></head>`, KindScript},
		{"iframe", `<iframe src="http://e.example/" width=1>fallback</iframe>`, `<iframe width="1">fallback</iframe>`, KindIFrame},
		{"srcdoc", `<iframe srcdoc="<script>x</script>"></iframe>`, `<iframe></iframe>`, KindIFrame},
		{"form", `<form action="http://phish.example/login" method=post><input name=pw type=password><button formaction="http://x.example/">go</button></form><input name=out>`,
			`<form><input name="pw" type="password" disabled="disabled"><button disabled="disabled">go</button></form><input name=out>`, KindForm},
		{"object", `<object codebase="http://e.example/x.cab" classid="clsid:1"><param name=a value=b>fallback text</object>`, `fallback text`, KindObject},
		{"embed and applet", `a<embed src="x.swf">b<applet code=A></applet>c`, `abc`, KindObject},
		{"web bug", `<img src="http://track.example/o.gif?id=1" width="1" height="1" alt="">`, `<img src="` + WebBugReplacement + `" width="1" height="1" alt="">`, KindWebBug},
		{"hidden image", `<img src="https://track.example/p" style="display: none">`, `<img src="` + WebBugReplacement + `" style="display: none">`, KindWebBug},
		{"zero width", `<IMG SRC="//t.example/p" width=0>`, `<img src="` + WebBugReplacement + `" width="0">`, KindWebBug},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, f := Rewrite([]byte(c.in), disarmAll)
			if string(out) != c.want {
				t.Errorf("Rewrite(%q)\n got %q\nwant %q", c.in, out, c.want)
			}
			if f.Found[c.kind] == 0 || f.Disarmed[c.kind] == 0 {
				t.Errorf("found %v disarmed %v, want %s in both", f.Found, f.Disarmed, c.kind)
			}
			// Only that kind.
			for k, n := range f.Found {
				if k != c.kind && n > 0 {
					t.Errorf("also found %s", k)
				}
			}
			// Nothing left to disarm.
			if again, f2 := Rewrite(out, disarmAll); again != nil {
				t.Errorf("second pass changed %q to %q (%v)", out, again, f2.Found)
			}
		})
	}
}

func TestRewriteKeepsHarmlessHTML(t *testing.T) {
	for _, in := range []string{
		`<html><head><style>p{color:red}</style></head><body><p class=x>Hello &amp; <b>bye</b></p></body></html>`,
		`<img src="http://cdn.example/logo.png" width="200" height="50">`,
		`<img src="http://cdn.example/spacer.gif" width="1" height="1">`, // a layout spacer, not a web bug
		`<img src="cid:part1" width="1" height="1">`,                     // carried in the mail
		`<a href="https://bank.example/">on the web</a>`,
		`<textarea><script>not a script</script></textarea>`,
		"caf\xe9 <b>latin-1</b>", // bytes of another charset stay as they are
	} {
		out, f := Rewrite([]byte(in), disarmAll)
		if out != nil {
			t.Errorf("Rewrite(%q) changed it to %q (%v)", in, out, f.Found)
		}
	}
}

func TestRewriteModes(t *testing.T) {
	in := `<script>x()</script><iframe src="http://e.example/"></iframe><form action="http://e.example/"></form>`
	// yes: seen, left.
	out, f := Rewrite([]byte(in), Settings{Script: Allow, IFrame: Allow, Form: Allow, Object: Allow, WebBugs: Allow})
	if out != nil || f.Found[KindScript] != 1 || f.Found[KindIFrame] != 1 || f.Found[KindForm] != 1 || len(f.Disarmed) != 0 {
		t.Errorf("allow: out %q found %v disarmed %v", out, f.Found, f.Disarmed)
	}
	// Only the script disarmed: the iframe and form stay byte for byte.
	out, f = Rewrite([]byte(in), Settings{Script: Disarm, IFrame: Deny, Form: Allow, Object: Allow, WebBugs: Allow})
	if want := `<iframe src="http://e.example/"></iframe><form action="http://e.example/"></form>`; string(out) != want {
		t.Errorf("script only: %q, want %q", out, want)
	}
	if f.Disarmed[KindIFrame] != 0 || f.Found[KindIFrame] != 1 {
		t.Errorf("iframe: found %v disarmed %v", f.Found, f.Disarmed)
	}
}

func TestRewriteNonASCIIAttribute(t *testing.T) {
	// An entity the tokenizer decoded is written back as a character
	// reference: right in every charset.
	out, _ := Rewrite([]byte(`<a title="caf&eacute;" onclick="x">l</a>`), disarmAll)
	if want := `<a title="caf&#233;">l</a>`; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestRewriteMalformed(t *testing.T) {
	for _, in := range []string{
		"", "<", "<script", "<script>never closed", "<a href='javascript:x", "<<<>>>", "</script>", "<form><form><input>",
		"<img src=http://x/ width=1 height=1", "<object><object><param>", "\x00<script>\x00</script>", "<a onclick>x",
		strings.Repeat("<div>", 10000), "<!--<script>x</script>-->", "<![CDATA[<script>]]>",
	} {
		out, _ := Rewrite([]byte(in), disarmAll)
		if out != nil {
			if _, err := xhtml.Parse(bytes.NewReader(out)); err != nil {
				t.Errorf("%q: output %q does not parse: %v", in, out, err)
			}
			if bytes.Contains(bytes.ToLower(out), []byte("<script")) {
				t.Errorf("%q: output %q still has a script", in, out)
			}
		}
	}
}
