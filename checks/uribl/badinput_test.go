package uribl

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chainmail/checks"
)

// message builds a message with a body of about size bytes: text with a
// URL every few lines, in an HTML or a plain part.
func sizedMessage(size int, html bool) *checks.Message {
	var b strings.Builder
	ct := "text/plain"
	if html {
		ct = "text/html"
	}
	b.WriteString("Content-Type: " + ct + "; charset=utf-8\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if html {
			fmt.Fprintf(&b, "<p>Line %d of the <b>newsletter</b>, <a href=\"http://www.site%d.example.com/a?b=c\">read more</a> about it.</p>\r\n", i, i%200)
		} else {
			fmt.Fprintf(&b, "Line %d of the newsletter, see http://www.site%d.example.com/a?b=c or write to news%d@example.org.\r\n", i, i%200, i)
		}
	}
	sp := checks.NewSpool(1<<20, "")
	m, _ := checks.ReadMessage(strings.NewReader(b.String()), sp)
	return m
}

// Extraction time is linear in the body size: 10 MB takes about a
// thousand times what 10 KB takes, not a million. The figures are logged
// (go test -v -run TestLinear).
func TestLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	for _, html := range []bool{false, true} {
		per := map[int]float64{}
		for _, size := range []int{10 << 10, 1 << 20, 10 << 20} {
			m := sizedMessage(size, html)
			runs := max(1, (1<<20)/size)
			best := time.Duration(1 << 62)
			for range min(runs, 20) {
				start := time.Now()
				Extract(m, Limits{MaxScan: 64 << 20, MaxURLs: 1 << 30})
				best = min(best, time.Since(start))
			}
			per[size] = float64(best.Nanoseconds()) / float64(size)
			t.Logf("html=%v %8d bytes: %v (%.1f ns/byte, %.0f MB/s)", html, size, best, per[size], float64(size)/best.Seconds()/1e6)
		}
		// Per-byte cost may not grow with size (10 KB has fixed costs, so
		// compare 1 MB and 10 MB); allow for noise on a shared machine.
		if per[10<<20] > 3*per[1<<20] {
			t.Errorf("html=%v: %.1f ns/byte at 10 MB vs %.1f at 1 MB: not linear", html, per[10<<20], per[1<<20])
		}
	}
}

// peakHeap runs f while sampling the heap and returns the highest
// HeapAlloc seen above the starting point.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// Memory stays bounded whatever the size: the body is spooled to disk and
// read in chunks, so 40 MB of text needs a few MB of heap.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory")
	}
	for _, html := range []bool{false, true} {
		m := sizedMessage(40<<20, html)
		runtime.GC()
		p := peakHeap(func() { Extract(m, Limits{MaxScan: 64 << 20, MaxURLs: 1 << 30}) })
		t.Logf("html=%v: 40 MB body, peak heap growth %.1f MB", html, float64(p)/1e6)
		if p > 48<<20 {
			t.Errorf("html=%v: heap grew by %d bytes for a 40 MB body", html, p)
		}
	}
}

// The inputs of the "bad input" list each give a defined result
// in bounded time.
func TestBadInput(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	cases := []struct {
		name, raw string
		want      string // a key that must be found, or ""
	}{
		{"1 MB single-line HTML", "Content-Type: text/html\r\n\r\n" + strings.Repeat(`<td><a href="http://a.example.com/">x</a> http://b.example.org/ `, 1<<20/64), "example.org"},
		{"one 3 MB text token", "Content-Type: text/html\r\n\r\n<p>" + long + " http://after.example.com/ " + long, "example.com"},
		{"one 3 MB attribute", "Content-Type: text/html\r\n\r\n<a href=\"http://x.example.com/" + long + "\">x</a> http://after.example.org/", "example.org"},
		{"unclosed everything", "Content-Type: text/html\r\n\r\n<a href=\"http://a.example.com/<b><i><table><tr><td>http://b.example.org <a href=http://c.example.net", "example.org"},
		{"nested anchors", "Content-Type: text/html\r\n\r\n<a href=http://a.example.com><a href=http://b.example.net>http://c.example.org</a></a>", "example.net"},
		{"angle soup", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<<<<>>>>&&&&;;;;<!--", 100000) + "http://s.example.com/", ""},
		{"comment bomb", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<!--", 200000) + " http://c.example.com/", ""},
		{"script never closed", "Content-Type: text/html\r\n\r\n<script>" + strings.Repeat("var a='http://x.example.com';", 100000), ""},
		{"colons and slashes", "\r\n" + strings.Repeat("http://", 300000), ""},
		{"ats", "\r\n" + strings.Repeat("a@", 500000) + "b@example.com", "example.com"},
		{"wwws", "\r\n" + strings.Repeat("www.", 500000), ""},
		{"long host", "\r\nhttp://" + strings.Repeat("a", 100000) + ".com/ http://ok.example.com/", "example.com"},
		{"many labels", "\r\nhttp://" + strings.Repeat("a.", 50000) + "com/", ""},
		{"bad base64", "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!not base64 at all http://x.example.com/!!!!\r\n", ""},
		{"bad quoted-printable", "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhttp://qp.example.com/ =ZZ broken =\r\n", "example.com"},
		{"unknown transfer encoding", "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-weird\r\n\r\nhttp://w.example.com/\r\n", "example.com"},
		{"deep nesting", strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 200) + "\r\nhttp://deep.example.com/\r\n", ""},
		{"many parts", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: text/plain\r\n\r\nhttp://p.example.com/\r\n", 5000) + "--b--\r\n", "example.com"},
		{"NUL bytes and invalid UTF-8", "\r\nhttp://a\x00b.example.com/ http://\xff\xfe.example.org/ http://ok.example.net/\r\n", "example.net"},
		{"IDN homograph and mixed scripts", "\r\nhttp://аррӏе.com/ http://xn--80ak6aa92e.com/ http://ｅｘａｍｐｌｅ．ｃｏｍ/\r\n", "xn--80ak6aa92e.com"},
		{"fullwidth dots", "\r\nhttp://example。com/\r\n", "example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := parse(t, tc.raw)
			start := time.Now()
			f := Extract(m, Limits{})
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if len(f.Keys) > 50 || len(f.Emails) > 50 || len(f.Links) > 200 {
				t.Errorf("over the caps: %d keys %d emails %d links", len(f.Keys), len(f.Emails), len(f.Links))
			}
			if tc.want != "" {
				found := false
				for _, k := range f.Keys {
					found = found || k.Value == tc.want
				}
				if !found {
					t.Errorf("%s not found in %v", tc.want, keys(f))
				}
			}
		})
	}
}

// The 100 000-URL HTML part of the issue: bounded by max_urls, the keys
// by max_lookups.
func TestHundredThousandURLs(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: text/html\r\n\r\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "<a href=\"http://h%d.example%d.com/\">http://t%d.example.org/</a>\n", i, i, i)
	}
	m := parse(t, b.String())
	start := time.Now()
	f := Extract(m, Limits{})
	d := time.Since(start)
	t.Logf("%d bytes, %d URLs parsed, %d keys, %d dropped, truncated %v, %v", b.Len(), f.URLs, len(f.Keys), f.Dropped, f.Truncated, d)
	if d > 3*time.Second || len(f.Keys) != 50 || !f.Truncated || f.URLs != 10000 {
		t.Errorf("%v %d keys truncated=%v urls=%d", d, len(f.Keys), f.Truncated, f.URLs)
	}
}

func BenchmarkExtract(b *testing.B) {
	for _, size := range []int{10 << 10, 1 << 20, 10 << 20} {
		for _, html := range []bool{false, true} {
			m := sizedMessage(size, html)
			b.Run(fmt.Sprintf("html=%v/%dKiB", html, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					Extract(m, Limits{MaxScan: 64 << 20, MaxURLs: 1 << 30})
				}
			})
		}
	}
}
