package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"chainmail/checks"
)

// runAttachments measures the attachment check through the real milter
// protocol on two messages: rspamd's gargantua.eml (59 attachments of 59
// file types) and a message with one 10 MB attachment. Each scenario gets
// its own chainmail process with only the attachment check, so the peak
// RSS it reports is that scenario's.
func runAttachments(bin, corpus string) error {
	garg, err := os.ReadFile(filepath.Join(corpus, "rspamd-functional", "messages", "gargantua.eml"))
	if err != nil {
		return fmt.Errorf("gargantua.eml: %v (set -corpus)", err)
	}
	big := make([]byte, 10<<20)
	rand.Read(big)
	var m bytes.Buffer
	m.WriteString("From: Alice <alice@bench.example>\r\nTo: Bob <bob@example.org>\r\nSubject: the data\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe data.\r\n--b\r\nContent-Type: application/octet-stream; name=data.bin\r\nContent-Disposition: attachment; filename=data.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	writeBase64(&m, big)
	m.WriteString("--b--\r\n")

	fmt.Printf("chainmail-bench: attachment check (only check in the chain), one connection, messages in turn\n")
	for _, sc := range []struct {
		name string
		msg  []byte
		n    int
	}{
		{"gargantua.eml (59 attachments)", garg, 50},
		{"10 MB attachment", m.Bytes(), 20},
	} {
		if err := benchOne(bin, sc.name, sc.msg, sc.n); err != nil {
			return fmt.Errorf("%s: %v", sc.name, err)
		}
	}
	return nil
}

func benchOne(bin, name string, msg []byte, n int) error {
	dir, err := os.MkdirTemp("", "chainmail-bench-att-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, err := freePort()
	if err != nil {
		return err
	}
	conf := fmt.Sprintf("listen: inet:%s\nmetrics: {listen: \"\"}\nlog:\n  sinks: [{type: file, path: %q}]\nchecks:\n  - name: attachment\n", addr, filepath.Join(dir, "verdicts.log"))
	srv, err := startServer(bin, dir, "bench.yaml", conf, addr)
	if err != nil {
		return err
	}
	defer srv.stop()
	idle, _ := peakRSS(srv.cmd.Process.Pid)
	client := srv.client
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), HELO: "mail.bench.example", MailFrom: "alice@bench.example", Rcpts: []string{"bob@example.org"}}
	s, err := client.Dial(env)
	if err != nil {
		return err
	}
	defer s.Close()
	var lat []time.Duration
	cpu0, _ := cpuTime(srv.cmd.Process.Pid)
	action := ""
	for i := 0; i < n; i++ {
		e := env
		e.QueueID = fmt.Sprintf("A%05d", i)
		t0 := time.Now()
		out, err := s.Send(e, bytes.NewReader(msg))
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		action = out.Action
	}
	cpu1, _ := cpuTime(srv.cmd.Process.Pid)
	peak, _ := peakRSS(srv.cmd.Process.Pid)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	log, _ := os.ReadFile(filepath.Join(dir, "verdicts.log"))
	lines := strings.Count(string(log), "\n") / max(n, 1)
	fmt.Printf("  %s: %d bytes, %d messages, verdict %s, %d log lines each\n", name, len(msg), n, action, lines)
	fmt.Printf("    latency p50 %8.2f ms, max %8.2f ms (milter transfer included)\n", ms(lat[len(lat)/2]), ms(lat[len(lat)-1]))
	fmt.Printf("    server CPU  %8.2f ms per message\n", ms(cpu1-cpu0)/float64(n))
	fmt.Printf("    server RSS  %8.1f MiB idle, %.1f MiB peak (%.1f MiB above idle)\n", float64(idle)/1024, float64(peak)/1024, float64(peak-idle)/1024)
	return nil
}
