package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// replayItem is one message replay reads: a .eml file, one message of an
// mbox file or one file of a Maildir folder.
type replayItem struct {
	// Name is what the output calls it: the file's path, "PATH#N" for
	// the Nth message of an mbox file holding several.
	Name string
	// Raw is the message, without its mbox separator and with mbox
	// ">From " quoting undone.
	Raw []byte
	// Sidecar is the envelope file that applies (PATH.envelope).
	Sidecar string
	// DefaultQueueID is derived from the content, for messages that give
	// none.
	DefaultQueueID string
}

// mboxSeparatorLine is an mbox "From " line (RFC 4155): "From", the
// sender, then an asctime date ("Thu Aug 22 10:00:00 2002").
var mboxSeparatorLine = regexp.MustCompile(`^From \S+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{1,2}:\d{2}`)

// readItems reads the messages of one file. A file that starts with a
// "From " line is read as an mbox: it is split on separator lines (a
// separator follows an empty line, or starts the file) and mboxrd
// quoting (">From ", ">>From " …) loses one '>'. Anything else is one
// message.
func readItems(path string) ([]replayItem, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	item := func(name string, msg, idFrom []byte) replayItem {
		sum := sha1.Sum(idFrom)
		return replayItem{Name: name, Raw: msg, Sidecar: path + ".envelope", DefaultQueueID: strings.ToUpper(hex.EncodeToString(sum[:5]))}
	}
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return []replayItem{item(path, raw, raw)}, nil
	}
	msgs := splitMbox(raw)
	if len(msgs) == 1 {
		// The queue id stays what it was for a single exported message.
		return []replayItem{item(path, msgs[0], raw)}, nil
	}
	out := make([]replayItem, len(msgs))
	for i, m := range msgs {
		out[i] = item(fmt.Sprintf("%s#%d", path, i+1), m, m)
	}
	return out, nil
}

// splitMbox splits an mbox file into its messages, each without its
// separator line and with ">From " quoting undone. The line end before a
// separator belongs to the separator (RFC 4155 §2: messages end with an
// empty line).
func splitMbox(raw []byte) [][]byte {
	var starts []int
	prevEmpty := true
	for off := 0; off < len(raw); {
		end := bytes.IndexByte(raw[off:], '\n')
		if end < 0 {
			end = len(raw)
		} else {
			end += off + 1
		}
		line := raw[off:end]
		if prevEmpty && mboxSeparatorLine.Match(line) {
			starts = append(starts, off)
		}
		prevEmpty = len(bytes.TrimRight(line, "\r\n")) == 0
		off = end
	}
	if len(starts) == 0 || starts[0] != 0 {
		// "From " with no date: one message, its first line dropped as
		// before.
		starts = append([]int{0}, starts...)
	}
	var out [][]byte
	for i, s := range starts {
		e := len(raw)
		if i+1 < len(starts) {
			e = starts[i+1]
			// Drop the empty line that separates this message from the next.
			if bytes.HasSuffix(raw[s:e], []byte("\r\n\r\n")) {
				e -= 2
			} else if bytes.HasSuffix(raw[s:e], []byte("\n\n")) {
				e--
			}
		}
		out = append(out, unquoteFrom(skipMboxFrom(raw[s:e])))
	}
	return out
}

// unquoteFrom removes one '>' from every line that starts with '>'s and
// "From " (mboxrd quoting).
func unquoteFrom(msg []byte) []byte {
	if !bytes.Contains(msg, []byte(">From ")) {
		return msg
	}
	out := make([]byte, 0, len(msg))
	for off := 0; off < len(msg); {
		end := bytes.IndexByte(msg[off:], '\n')
		if end < 0 {
			end = len(msg)
		} else {
			end += off + 1
		}
		line := msg[off:end]
		if len(line) > 1 && line[0] == '>' && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			line = line[1:]
		}
		out = append(out, line...)
		off = end
	}
	return out
}

// isMaildir reports whether dir is a Maildir folder (it has cur/ or new/).
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// collect expands the paths replay was given into files, in order: a
// file stands for itself; a Maildir folder for the files in its cur/ and
// new/ (sorted, tmp/ left alone: messages being delivered); another
// directory for the *.eml and *.mbox files below it and the messages of
// the Maildir folders below it, sorted.
func collect(paths []string) ([]string, error) {
	var out []string
	var errs []error
	maildir := func(dir string) []string {
		var found []string
		for _, sub := range []string{"cur", "new"} {
			ents, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			for _, e := range ents {
				if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
					found = append(found, filepath.Join(dir, sub, e.Name()))
				}
			}
		}
		sort.Strings(found)
		return found
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		if isMaildir(p) {
			out = append(out, maildir(p)...)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if d.IsDir() {
				if path != p && isMaildir(path) {
					found = append(found, maildir(path)...)
					return fs.SkipDir
				}
				return nil
			}
			name := strings.ToLower(d.Name())
			if strings.HasSuffix(name, ".eml") || strings.HasSuffix(name, ".mbox") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, errors.Join(errs...)
}
