package bayes

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"chainmail/checks"
)

func checksReadMessage(raw []byte) (*checks.Message, error) {
	return checks.ReadMessage(bytes.NewReader(raw), checks.NewSpool(0, ""))
}

func tokensOf(t testing.TB, raw string, lim TokenLimits) []string {
	t.Helper()
	return Tokenize(readMessage(t, []byte(raw)), lim)
}

func plainMessage(subject, body string) string {
	return "From: Deals <win@promo.example.com>\r\nTo: you@example.org\r\nSubject: " + subject +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
}

func htmlMessage(body string) string {
	return "From: Deals <win@promo.example.com>\r\nTo: you@example.org\r\nSubject: offer\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n" + body + "\r\n"
}

func has(toks []string, tok string) bool { return slices.Contains(toks, tok) }

// TestObfuscationUndone: each way of disguising a word gives the plain
// word's token, and the disguise is a feature of its own.
func TestObfuscationUndone(t *testing.T) {
	for _, c := range []struct {
		name, text, feature string
	}{
		{"plain", "buy viagra now", ""},
		{"upper case", "buy VIAGRA now", ""},
		{"dots", "buy V.i.a.g.r.a now", "obf:spaced"},
		{"hyphens", "buy v-i-a-g-r-a now", "obf:spaced"},
		{"spaces", "buy V I A G R A now", "obf:spaced"},
		{"stars and spaces", "buy v * i * a * g * r * a now", "obf:spaced"},
		{"zero-width space", "buy vi\u200bag\u200cra now", ""},
		{"word joiner and BOM", "buy via\u2060gr\ufeffa now", ""},
		{"soft hyphen", "buy via\u00adgra now", ""},
		{"Cyrillic a and e", "buy vi\u0430gr\u0430 now", "obf:mixed-script"},
		{"Greek omicron", "buy viagra n\u03bfw", "obf:mixed-script"},
		{"full-width letters (NFKC)", "buy \uff56\uff49\uff41\uff47\uff52\uff41 now", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, where := range []struct{ raw, tok string }{
				{plainMessage("hello", c.text), "viagra"},
				{plainMessage(c.text, "hello"), "s:viagra"},
			} {
				toks := tokensOf(t, where.raw, TokenLimits{})
				if !has(toks, where.tok) || !has(toks, strings.Replace(where.tok, "viagra", "buy", 1)) {
					t.Errorf("%q: no %q in %v", c.text, where.tok, toks)
				}
				if c.feature != "" && !has(toks, c.feature) {
					t.Errorf("%q: no feature %q in %v", c.text, c.feature, toks)
				}
				if c.feature == "" && (has(toks, "obf:spaced") || has(toks, "obf:mixed-script")) {
					t.Errorf("%q: obfuscation feature on plain text: %v", c.text, toks)
				}
			}
		})
	}
}

// TestNoFalseObfuscation: ordinary text is not read as disguised words.
func TestNoFalseObfuscation(t *testing.T) {
	toks := tokensOf(t, plainMessage("hello", "I think a cat is here.\r\nA\r\nB\r\nC\r\n"+
		"Привет, как дела? Ελληνικά κείμενο."), TokenLimits{})
	for _, bad := range []string{"obf:spaced", "obf:mixed-script", "abc", "ita"} {
		if has(toks, bad) {
			t.Errorf("%q in %v", bad, toks)
		}
	}
	// Russian and Greek words stay as they are.
	for _, want := range []string{"привет", "дела", "ελληνικά", "think"} {
		if !has(toks, want) {
			t.Errorf("no %q in %v", want, toks)
		}
	}
}

// TestHTMLHiddenText: text a reader does not see (hidden by CSS, a
// zero-size font, white on white; scripts, styles and comments) is not
// read as words; hiding it is a feature.
func TestHTMLHiddenText(t *testing.T) {
	toks := tokensOf(t, htmlMessage(`<html><head><style>p { color: red } stylewordzz</style>
<script>var scriptwordzz = 1;</script></head>
<body><!-- commentwordzz -->
<p>Visible offer here</p>
<div style="display: none">hiddenone lotsofham</div>
<span style="font-size:0px">hiddentwo</span>
<font color="#FFFFFF">hiddenthree</font>
<div style="visibility:hidden"><b>hiddenfour</b></div>
<table bgcolor="black"><tr><td><font color="black">hiddenfive</font></td></tr></table>
<p>after the hidden parts <a href="http://Click.Shop.Example.co.uk/x?y">here</a>
<img src="https://img.tracker.example.net/p.gif"><form action="/x"></form></p>
</body></html>`), TokenLimits{})
	for _, word := range []string{"stylewordzz", "scriptwordzz", "commentwordzz", "hiddenone", "lotsofham", "hiddentwo", "hiddenthree", "hiddenfour", "hiddenfive"} {
		if has(toks, word) {
			t.Errorf("hidden word %q read: %v", word, toks)
		}
	}
	for _, want := range []string{"visible", "offer", "after", "hidden", "parts", "html:hidden", "html:hidden:div",
		"html:hidden:span", "html:hidden:font", "url:click.shop.example.co.uk", "urld:example.co.uk",
		"url:img.tracker.example.net", "html:img:external", "html:form", "html:links:1", "html:comments:1"} {
		if !has(toks, want) {
			t.Errorf("no %q in %v", want, toks)
		}
	}
}

// TestHeaderFeatures: the sender's domains and display name, the mailer
// without its version, a Reply-To elsewhere, the Message-ID's domain,
// Received hops and field names.
func TestHeaderFeatures(t *testing.T) {
	raw := "Received: from mx.relay.example.net by mx.example.org\r\nReceived: from a by b\r\n" +
		"From: \"Jane Q. Sender\" <jane@News.Shop.Example.com>\r\nReply-To: other@elsewhere.example\r\n" +
		"To: you@example.org\r\nSubject: hi\r\nMessage-ID: <abc@host.mailer.example.org>\r\n" +
		"X-Mailer: Microsoft Outlook Express 6.00.2600.0000 (build 12)\r\nList-Id: <x.example.org>\r\n" +
		"Content-Type: text/plain; charset=ISO-8859-1\r\n\r\nsee www.Bare-Link.example.com/path and https://198.51.100.7/x\r\n"
	toks := tokensOf(t, raw, TokenLimits{})
	for _, want := range []string{"h:from:news.shop.example.com", "h:fromd:example.com", "n:jane", "n:sender",
		"h:replyto:elsewhere", "h:mid:example.org", "h:mailer:microsoft outlook express", "h:hops:2",
		"h:has:list-id", "h:relay:example.net", "h:ct:text/plain", "h:cs:iso-8859-1",
		"url:www.bare-link.example.com", "urld:example.com", "url:ip"} {
		if !has(toks, want) {
			t.Errorf("no %q in %v", want, toks)
		}
	}
	for in, want := range map[string]string{
		"Microsoft Outlook Express 6.00.2600.0000": "microsoft outlook express",
		"Mutt/1.4i":                              "mutt",
		"Mozilla/5.0 (X11; U; Linux i686) Gecko": "mozilla",
		"QUALCOMM Windows Eudora Version 5.1":    "qualcomm windows eudora",
		"1.2.3":                                  "other",
	} {
		if got := mailerName(in); got != want {
			t.Errorf("mailerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPairs: adjacent body words give a pair feature, up to maxPairs.
func TestPairs(t *testing.T) {
	toks := tokensOf(t, plainMessage("hi", "Click HERE to v.i.a.g.r.a now"), TokenLimits{})
	for _, want := range []string{"b:click here", "b:here to", "b:to viagra", "b:viagra now"} {
		if !has(toks, want) {
			t.Errorf("no %q in %v", want, toks)
		}
	}
	var words strings.Builder
	for i := 0; i < 2*maxPairs; i++ {
		words.WriteString("word" + strings.Repeat("x", i%25) + string(rune('a'+i/25)) + " ")
	}
	n := 0
	for _, tok := range tokensOf(t, plainMessage("hi", words.String()), TokenLimits{}) {
		if strings.HasPrefix(tok, "b:") {
			n++
		}
	}
	if n != maxPairs {
		t.Errorf("%d pairs, want %d", n, maxPairs)
	}
}

// TestLongWords: a word longer than 30 characters becomes a feature of
// its kind and length, not itself.
func TestLongWords(t *testing.T) {
	toks := tokensOf(t, plainMessage("hi", "x "+strings.Repeat("ab12", 10)+" "+strings.Repeat("q", 70)), TokenLimits{})
	for _, want := range []string{"skip:mixed:40", "skip:letters:100"} {
		if !has(toks, want) {
			t.Errorf("no %q in %v", want, toks)
		}
	}
	for _, tok := range toks {
		if len([]rune(tok)) > 3*maxWord+20 {
			t.Errorf("long token %q", tok)
		}
	}
}

// TestPathological: messages built to make the tokenizer slow or its
// output big stay within the limits: at most MaxTokens tokens, and no
// text read past MaxText.
func TestPathological(t *testing.T) {
	lim := TokenLimits{MaxText: 1 << 20, MaxTokens: 500}
	letters := strings.Repeat("a ", 5<<20) // 10 MB of single letters
	deep := strings.Repeat("<div style='display:none'><font color=white>", 100000) + "deepword" + strings.Repeat("</div>", 100000)
	many := make([]byte, 0, 8<<20)
	for i := 0; len(many) < 8<<20; i++ {
		many = append(many, "w"...)
		many = append(many, []byte(strings.Repeat("x", i%7+2)+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676%26))+" ")...)
	}
	for _, c := range []struct{ name, raw string }{
		{"single letters", plainMessage("s", letters+" lateword")},
		{"deep HTML", htmlMessage(deep + " lateword")},
		{"huge HTML of distinct words", htmlMessage("<p>" + string(many) + "</p> lateword")},
		{"huge plain text of distinct words", plainMessage("s", string(many)+" lateword")},
	} {
		t.Run(c.name, func(t *testing.T) {
			toks := tokensOf(t, c.raw, lim)
			if len(toks) > lim.MaxTokens {
				t.Errorf("%d tokens, limit %d", len(toks), lim.MaxTokens)
			}
			if has(toks, "lateword") {
				t.Error("text past max_text was read")
			}
		})
	}
	// A message with many MIME parts is bounded by the walk.
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n")
	for i := 0; i < 5000; i++ {
		b.WriteString("--B\r\nContent-Type: text/plain\r\n\r\nword" + strings.Repeat("z", i%20) + "\r\n")
	}
	b.WriteString("--B--\r\n")
	if toks := tokensOf(t, b.String(), lim); len(toks) > lim.MaxTokens {
		t.Errorf("many parts: %d tokens", len(toks))
	}
}

// FuzzTokenize: any input tokenizes without panicking, within MaxTokens,
// and the same way twice.
func FuzzTokenize(f *testing.F) {
	f.Add([]byte(spamText))
	f.Add([]byte(hamText))
	f.Add([]byte(htmlMessage(`<p style="display:none">x</p><a href="http://a.example.com">V.i.a.g.r.a</a><font color=white>y`)))
	f.Add([]byte(plainMessage("=?utf-8?b?0J/RgNC40LLQtdGC?=", "vi\u0430gr\u0430 \u200b www.x.example.com")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=koi8-r\r\n\r\n<b>\xf0\xd2\xc9</b>\r\n--b\r\nContent-Disposition: attachment; filename=a.exe\r\n\r\nMZ\r\n--b--\r\n"))
	lim := TokenLimits{MaxText: 64 << 10, MaxTokens: 200}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := checksReadMessage(raw)
		if err != nil {
			return
		}
		a := Tokenize(m, lim)
		b := Tokenize(m, lim)
		if len(a) > lim.MaxTokens {
			t.Fatalf("%d tokens, limit %d", len(a), lim.MaxTokens)
		}
		if !slices.Equal(a, b) {
			t.Fatalf("not deterministic:\n%v\n%v", a, b)
		}
		seen := map[string]bool{}
		for _, tok := range a {
			if seen[tok] || tok == "" {
				t.Fatalf("token %q repeated or empty", tok)
			}
			seen[tok] = true
		}
	})
}
