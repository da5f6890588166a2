package checktest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Debian's chromium (package chromium), the
// real browser that drives the web console's tests. Without it the test
// is skipped loudly, or fails when the CI variable is set.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	msg := "Chromium is not installed; apt-get install chromium"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
	return ""
}

// Browser starts a headless Chromium with a private profile (no sandbox
// when running as root, where Chromium refuses one) and returns a
// chromedp context for one tab, valid until the test ends (or timeout).
// Chromium's own messages go to the test log.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	bin := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("hide-scrollbars", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromium: "+format, args...)
	}))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser now, so that a broken installation fails here.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return bctx
}

// ScreenshotDir is where a test saves its screenshots: the directory
// named by $CHAINMAIL_SCREENSHOTS when set (created), else a temporary
// directory of the test.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CHAINMAIL_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(fmt.Errorf("CHAINMAIL_SCREENSHOTS: %v", err))
	}
	return dir
}
