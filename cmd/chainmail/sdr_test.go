package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chainmail/reputation/rdaptest"
	"chainmail/store/storetest"
)

// TestSDRCases runs testdata/sdr/NNN-name/ (see its README) through
// `learn` and `replay` with a loopback RDAP server, once on a bbolt state
// file and once on Redis, and compares the output with want.log.
func TestSDRCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "sdr", "0*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	backends := []string{"bolt", "redis"}
	if testing.Short() {
		backends = backends[:1]
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			var redisAddr string
			if backend == "redis" {
				redisAddr = storetest.StartRedis(t).Addr()
			}
			for i, dir := range dirs {
				t.Run(filepath.Base(dir), func(t *testing.T) {
					state := fmt.Sprintf("state: {backend: bolt, path: %q, flush_interval: 50ms}\n", filepath.Join(t.TempDir(), "state.db"))
					if backend == "redis" {
						// One server, a fresh key prefix per case.
						state = fmt.Sprintf("state: {backend: redis, redis: {addrs: [%q], prefix: \"sdr%d:\", timeout: 2s}}\n", redisAddr, i)
					}
					out := runSDRCase(t, dir, state)
					want := filepath.Join(dir, "want.log")
					if *update && backend == "bolt" {
						if err := os.WriteFile(want, []byte(out), 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					w, err := os.ReadFile(want)
					if err != nil {
						t.Fatalf("%v (run with -update to create it)", err)
					}
					if out != string(w) {
						t.Errorf("output differs\n--- got\n%s--- want\n%s", out, w)
					}
				})
			}
		})
	}
}

// runSDRCase sets up the RDAP server and the configuration of one case
// and runs its steps.
func runSDRCase(t *testing.T, dir, state string) string {
	t.Helper()
	srv := rdaptest.Start(t)
	srv.SlowFor = 5 * time.Second
	readLines(t, filepath.Join(dir, "rdap.txt"), func(f []string) {
		if len(f) != 2 {
			t.Fatalf("rdap.txt: %q", f)
		}
		if days, ok := strings.CutSuffix(f[1], "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil {
				t.Fatalf("rdap.txt: %q", f)
			}
			srv.Register(f[0], time.Now().Add(-time.Duration(n)*24*time.Hour-time.Hour))
			return
		}
		srv.Register(f[0], time.Now().AddDate(-1, 0, 0))
		srv.Fail(f[0], map[string]rdaptest.Fault{"404": rdaptest.NotFound, "429": rdaptest.RateLimited, "503": rdaptest.ServerError,
			"slow": rdaptest.Slow, "garbage": rdaptest.Garbage}[f[1]])
	})
	tmp := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	boot := srv.BootstrapFile(t, tmp, "test")
	cfg := filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(conf), "@RDAP@", boot)+"\n"+state), 0o644); err != nil {
		t.Fatal(err)
	}
	zones, _ := filepath.Glob(filepath.Join(dir, "*.zone"))

	var out strings.Builder
	readLines(t, filepath.Join(dir, "steps"), func(f []string) {
		out.WriteString("# " + strings.Join(f, " ") + "\n")
		switch f[0] {
		case "replay":
			args := []string{"replay", "-c", cfg, "--json"}
			for _, z := range zones {
				args = append(args, "--zone", z)
			}
			code, stdout, stderr := runCmd(t, append(args, filepath.Join(dir, f[1]))...)
			if code != exitOK {
				t.Fatalf("replay: exit %d: %s", code, stderr)
			}
			var r replayResult
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			for _, l := range r.Log {
				out.WriteString(l + "\n")
			}
			out.WriteString("=> " + r.Action + " " + r.Reply + "\n")
		case "learn":
			files := []string{filepath.Join(dir, f[2])}
			if len(f) == 5 {
				files = datedCopies(t, files[0], f[3], f[4])
			} else {
				// A report is dated by its message: dated now, a
				// case gives the same history whatever day it runs.
				files = datedCopies(t, files[0], "every=1d", "for=0d")
			}
			code, _, stderr := runCmd(t, append([]string{"learn", f[1], "-c", cfg}, files...)...)
			if code != exitOK {
				t.Fatalf("learn: exit %d: %s", code, stderr)
			}
		default:
			t.Fatalf("steps: unknown %q", f[0])
		}
	})
	return out.String()
}

func readLines(t *testing.T, path string, fn func([]string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 0 && !strings.HasPrefix(fs[0], "#") {
			fn(fs)
		}
	}
}

var dateField = regexp.MustCompile(`(?m)^Date: [^\r\n]*`)

// datedCopies writes copies of path dated every `every` (7d) back to
// `for` (91d) before now.
func datedCopies(t *testing.T, path, every, span string) []string {
	t.Helper()
	days := func(s, key string) int {
		v, ok := strings.CutPrefix(s, key+"=")
		n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if !ok || err != nil || n < 0 || n == 0 && key == "every" {
			t.Fatalf("steps: %q, want %s=Nd", s, key)
		}
		return n
	}
	step, total := days(every, "every"), days(span, "for")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out []string
	for d := total; d >= 0; d -= step {
		date := time.Now().Add(-time.Duration(d)*24*time.Hour - time.Minute).Format(time.RFC1123Z)
		p := filepath.Join(dir, fmt.Sprintf("copy-%03d.eml", d))
		if err := os.WriteFile(p, dateField.ReplaceAll(raw, []byte("Date: "+date)), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
