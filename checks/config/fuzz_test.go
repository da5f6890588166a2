package config_test

import (
	"strings"
	"testing"

	"chainmail/checks/config"
)

// FuzzParse: any file either fails to load with an error naming it, or
// loads and prints an effective configuration that loads again. Empty
// files never load.
func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("# only a comment\n"))
	f.Add([]byte("milter: {socket_mode: \"0660\", socket_group: postfix, max_connections: 10}\n"))
	f.Add([]byte("milter:\n  socket_mode: 0o640\n  idle_timeout: 5m\n"))
	f.Add([]byte("state: {backend: redis, redis: {addrs: [\"127.0.0.1:6379\"], password: pw}}\nmetrics: {pprof: true}\n"))
	f.Add([]byte("checks:\n  - name: quota\n    options:\n      webhook: {url: https://x.example/, headers: {Authorization: Bearer t}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") && !strings.Contains(err.Error(), "(default)") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if strings.TrimSpace(stripComments(string(data))) == "" {
			t.Fatalf("an empty file loaded")
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse("again.yaml", out); err != nil {
			t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
		}
	})
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l)
	}
	return b.String()
}
