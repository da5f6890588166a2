package config_test

import (
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/gtube"
)

// Sizes and durations have one spelling everywhere, check options
// included: gtube's max_scan and antivirus's stream_max_length take
// units as the chain's max_size does, and bare byte counts still work.
func TestOneSizeSpelling(t *testing.T) {
	for _, text := range []string{
		"checks:\n  - name: gtube\n    max_size: 10MiB\n    options: {max_scan: 1KiB}\n",
		"checks:\n  - name: gtube\n    max_size: 10485760\n    options: {max_scan: 1024}\n",
		"checks:\n  - name: antivirus\n    timeout: 30s\n    options: {timeout: 2s, stream_max_length: 25MiB}\n",
		"checks:\n  - name: antivirus\n    options: {stream_max_length: 26214400}\n",
		"checks:\n  - name: uribl\n    options: {max_scan: 16MiB}\n",
		"checks:\n  - name: attachment\n    options: {max_file_size: 32MiB, max_total: 268435456}\n",
	} {
		build(t, parse(t, text))
	}
	// max_scan: 1KiB is 1024 bytes: GTUBE at byte 2000 is not seen, at
	// byte 500 it is.
	e := build(t, parse(t, "checks:\n  - name: gtube\n    options: {max_scan: 1KiB}\n"))
	for _, tc := range []struct {
		at   int
		want checks.Status
	}{{2000, checks.StatusClean}, {500, checks.StatusSpam}} {
		raw := "From: a@example.com\r\nSubject: t\r\n\r\n" + strings.Repeat("x", tc.at) + gtube.String + "\r\n"
		v := evaluate(t, e, message(t, "a@example.com", raw))
		if r, _ := v.Results.Get("gtube"); r.Status != tc.want {
			t.Errorf("GTUBE at byte %d with max_scan: 1KiB: status %s, want %s", tc.at, r.Status, tc.want)
		}
	}
}

// The dns section is the DNS client's own settings, cache_size included.
func TestDNSSettingsAreTheClients(t *testing.T) {
	f := parse(t, "dns:\n  servers: [\"127.0.0.1:5353\"]\n  timeout: 1500ms\n  retries: -1\n  cache_size: 500\n")
	if f.DNS.CacheSize != 500 || f.DNS.Retries != -1 || f.DNS.Timeout != 1500*time.Millisecond || len(f.DNS.Servers) != 1 {
		t.Errorf("dns %+v", f.DNS)
	}
	if d := config.Default().DNS; d.CacheSize != 10000 || d.Timeout != 2*time.Second || d.Retries != 1 {
		t.Errorf("default dns %+v", d)
	}
}
