package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"chainmail/milter/mtatest"
)

// Through a real Postfix (smtpd runs as user postfix): with the socket in
// group postfix, mode 0660, Postfix reaches chainmail (GTUBE is rejected
// with chainmail's reply); with mode 0600 it cannot, and applies
// milter_default_action (tempfail). Other local users get neither.
func TestPostfixUnixSocketGroup(t *testing.T) {
	if _, err := lookupGroup("postfix"); err != nil {
		t.Skip("no group postfix")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		mode string
		code int
	}{{"0660", 550}, {"0600", 451}} {
		t.Run(tc.mode, func(t *testing.T) {
			// The socket's directory must be reachable by user postfix.
			dir, err := os.MkdirTemp("", "chainmail-sock-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.Chmod(dir, 0o755)
			sock := filepath.Join(dir, "milter.sock")
			cfg := filepath.Join(dir, "chainmail.yaml")
			conf := fmt.Sprintf("metrics: {listen: \"\"}\nmilter: {socket_mode: %q, socket_group: postfix}\nchecks:\n  - name: gtube\n    decisive: spam\n", tc.mode)
			if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			d := startProcess(t, exec.Command(bin, "serve", "-c", cfg, "-listen", "unix:"+sock), "unix", sock)
			pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "unix:" + sock, DefaultAction: "tempfail"})
			c := pf.Dial(t)
			if r := c.Ehlo("client.example"); r.Code != 250 {
				t.Fatalf("EHLO: %v", r)
			}
			r := c.Send("x@example.net", []string{"bob@example.org"}, e2eMessage("gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"))
			c.Quit()
			if r.Code != tc.code {
				t.Errorf("mode %s: %v, want %d\n%s", tc.mode, r, tc.code, d.stderr.String())
			}
		})
	}
}
