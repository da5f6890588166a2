package whaling

import (
	"os/exec"
	"strings"
	"testing"
)

// Whaling reads addresses with the leaf package address, not with the
// SDR library (chainmail/reputation).
func TestDoesNotImportSDRLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "chainmail/checks/whaling").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "chainmail/reputation" {
			t.Error("chainmail/checks/whaling imports chainmail/reputation")
		}
	}
}
