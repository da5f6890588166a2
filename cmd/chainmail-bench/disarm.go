package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"chainmail/attachments"
)

// benchFile is one document of the disarm section.
type benchFile struct {
	name string
	data []byte
}

// disarmFiles reads every file of oletools' test data and every attachment
// of SpamAssassin's olevbmacro messages.
func disarmFiles(corpus string) ([]benchFile, error) {
	var out []benchFile
	root := filepath.Join(corpus, "oletools-test-data")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		out = append(out, benchFile{d.Name(), data})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%v (set -corpus)", err)
	}
	emls, _ := filepath.Glob(filepath.Join(corpus, "apache-spamassassin-t-data", "spam", "olevbmacro", "*.eml"))
	if len(emls) == 0 {
		return nil, fmt.Errorf("no olevbmacro messages under %s (set -corpus)", corpus)
	}
	for _, p := range emls {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		tree := attachments.Walk(bytes.NewReader(raw), int64(len(raw)), attachments.WalkOptions{})
		for _, e := range tree.Root.Leaves() {
			if !e.IsAttachment() {
				continue
			}
			data, err := io.ReadAll(e.Open())
			if err != nil {
				return nil, fmt.Errorf("%s: %v", p, err)
			}
			out = append(out, benchFile{e.Filename(), data})
		}
	}
	return out, nil
}

// runDisarm counts what Disarm makes of the corpus documents (disarmed,
// refused and why, left as they are because nothing in them is active),
// checks every disarmed file with Analyse again, and measures the cost
// of Analyse (all files) and of Disarm (the files with active content):
// the median of several runs over the same set.
func runDisarm(corpus string) error {
	files, err := disarmFiles(corpus)
	if err != nil {
		return err
	}
	var active []benchFile
	var allBytes, activeBytes int64
	for _, f := range files {
		allBytes += int64(len(f.data))
		if len(attachments.Analyse(f.data)) > 0 {
			active = append(active, f)
			activeBytes += int64(len(f.data))
		}
	}
	disarmed, stillActive := 0, 0
	var done []benchFile // the files Disarm accepts
	var doneBytes int64
	reasons := map[string]int{}
	for _, f := range active {
		d, err := attachments.Disarm(f.name, f.data)
		if err != nil {
			r := strings.TrimPrefix(err.Error(), attachments.ErrCannotDisarm.Error()+": ")
			if !errors.Is(err, attachments.ErrCannotDisarm) {
				r = "(not ErrCannotDisarm) " + r
			}
			reasons[r]++
			continue
		}
		disarmed++
		done = append(done, f)
		doneBytes += int64(len(f.data))
		if len(attachments.Analyse(d.Data)) > 0 {
			stillActive++
		}
	}
	fmt.Printf("chainmail-bench: disarm (oletools-test-data and the olevbmacro .eml attachments: %d files, %.2f MB)\n", len(files), float64(allBytes)/1e6)
	fmt.Printf("  with active content %d, disarmed %d, refused %d, left as is (nothing active) %d\n", len(active), disarmed, len(active)-disarmed, len(files)-len(active))
	var rs []string
	for r := range reasons {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		return reasons[rs[i]] > reasons[rs[j]] || reasons[rs[i]] == reasons[rs[j]] && rs[i] < rs[j]
	})
	for _, r := range rs {
		fmt.Printf("    refused %3d: %s\n", reasons[r], r)
	}
	fmt.Printf("  disarmed files in which Analyse still finds active content: %d (must be 0)\n", stillActive)

	const runs = 7
	median := func(f func()) time.Duration {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			f()
			ds = append(ds, time.Since(t0))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[runs/2]
	}
	cost := func(what string, n int, bytes int64, d time.Duration) {
		mb := float64(bytes) / 1e6
		fmt.Printf("  %-8s %3d files %6.2f MB: %8.1f MB/s, %8.2f ms per MB (median of %d runs, %.2f ms a run)\n", what, n, mb, mb/d.Seconds(), ms(d)/mb, runs, ms(d))
	}
	cost("Analyse", len(files), allBytes, median(func() {
		for _, f := range files {
			attachments.Analyse(f.data)
		}
	}))
	cost("Disarm", len(active), activeBytes, median(func() {
		for _, f := range active {
			attachments.Disarm(f.name, f.data)
		}
	}))
	fmt.Printf("    (Disarm: every file with active content, a refusal counted at what it cost to decide)\n")
	if len(done) > 0 {
		cost("Disarm", len(done), doneBytes, median(func() {
			for _, f := range done {
				attachments.Disarm(f.name, f.data)
			}
		}))
		fmt.Printf("    (Disarm: the files it disarms only)\n")
	}
	if stillActive > 0 {
		return fmt.Errorf("%d disarmed files still carry active content", stillActive)
	}
	return nil
}
