package main

import (
	"fmt"
	"math"
	"testing"
)

func TestROCAUC(t *testing.T) {
	// Pairs (spam, ham) with spam above: 0.9 beats all 3 hams, 0.5 beats
	// 0.1 and 0.3 and ties 0.5 (2.5), 0.2 beats 0.1 (1): 6.5 of 9.
	got := rocAUC([]float64{0.9, 0.5, 0.2}, []float64{0.1, 0.3, 0.5})
	if math.Abs(got-6.5/9) > 1e-12 {
		t.Errorf("rocAUC = %v, want %v", got, 6.5/9)
	}
	if got := rocAUC([]float64{2, 3}, []float64{0, 1}); got != 1 {
		t.Errorf("separated: rocAUC = %v, want 1", got)
	}
	if got := rocAUC([]float64{0, 1}, []float64{2, 3}); got != 0 {
		t.Errorf("reversed: rocAUC = %v, want 0", got)
	}
	if got := rocAUC(nil, []float64{1}); !math.IsNaN(got) {
		t.Errorf("no spam: rocAUC = %v, want NaN", got)
	}
}

func TestAtFPRate(t *testing.T) {
	// 10 hams 0.0 … 0.9, spams spread across.
	ham := []float64{0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	spam := []float64{0.95, 0.9, 0.85, 0.75, 0.2}
	for _, c := range []struct {
		rate      float64
		threshold float64
		hamFP     int
		spamHit   int
	}{
		// No ham allowed above: threshold at the top ham 0.9; spam
		// strictly above it: 0.95 only (0.9 ties and counts as ham).
		{0.0, 0.9, 0, 1},
		{0.05, 0.9, 0, 1},
		// One ham of 10 allowed: threshold 0.8, ham 0.9 above it;
		// spams 0.95, 0.9, 0.85.
		{0.1, 0.8, 1, 3},
		// Three allowed: threshold 0.6; spams 0.95 … 0.75.
		{0.3, 0.6, 3, 4},
		// Everything allowed: the lowest ham, 0.0, is the threshold.
		{1, 0.0, 9, 5},
	} {
		t.Run(fmt.Sprint(c.rate), func(t *testing.T) {
			p := atFPRate(spam, ham, c.rate)
			if p.Threshold != c.threshold || p.HamFP != c.hamFP || p.SpamHit != c.spamHit {
				t.Errorf("atFPRate(%v) = threshold %v, %d ham, %d spam; want %v, %d, %d",
					c.rate, p.Threshold, p.HamFP, p.SpamHit, c.threshold, c.hamFP, c.spamHit)
			}
			if want := float64(c.spamHit) / float64(len(spam)); p.Recall != want {
				t.Errorf("recall %v, want %v", p.Recall, want)
			}
		})
	}
}

func TestSplitCorpus(t *testing.T) {
	var msgs []corpusMessage
	add := func(group string, sums ...string) {
		for _, s := range sums {
			msgs = append(msgs, corpusMessage{group: group, md5: s, name: "x." + s})
		}
	}
	// Out of order on purpose: the split orders by MD5 within a group.
	add("spam-1", "f0", "a0", "c0", "b0", "e0", "d0", "00")
	add("easy-ham-1", "33", "11", "22")
	train, test := splitCorpus(msgs)
	sums := func(ms []corpusMessage) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.group+"/"+m.md5)
		}
		return out
	}
	// easy-ham-1 sorted: 11 22 33 → test 33. spam-1 sorted: 00 a0 b0 c0
	// d0 e0 f0 → test b0 (2) and e0 (5).
	wantTest := []string{"easy-ham-1/33", "spam-1/b0", "spam-1/e0"}
	wantTrain := []string{"easy-ham-1/11", "easy-ham-1/22", "spam-1/00", "spam-1/a0", "spam-1/c0", "spam-1/d0", "spam-1/f0"}
	if got := sums(test); fmt.Sprint(got) != fmt.Sprint(wantTest) {
		t.Errorf("test = %v, want %v", got, wantTest)
	}
	if got := sums(train); fmt.Sprint(got) != fmt.Sprint(wantTrain) {
		t.Errorf("train = %v, want %v", got, wantTrain)
	}
	// The input order does not matter.
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	_, test2 := splitCorpus(msgs)
	if fmt.Sprint(sums(test2)) != fmt.Sprint(wantTest) {
		t.Errorf("reversed input: test = %v, want %v", sums(test2), wantTest)
	}
}

func TestLatin1(t *testing.T) {
	b, ok := latin1("a\u00e9\u00ff")
	if !ok || string(b) != "a\xe9\xff" {
		t.Errorf("latin1 = %q %v", b, ok)
	}
	if _, ok := latin1("\u20ac"); ok {
		t.Errorf("latin1 of U+20AC: ok, want not")
	}
}

func TestLimitTest(t *testing.T) {
	var test []corpusMessage
	for i := 0; i < 6; i++ {
		test = append(test, corpusMessage{group: "ham", md5: fmt.Sprint(i)})
	}
	for i := 0; i < 3; i++ {
		test = append(test, corpusMessage{group: "spam", md5: fmt.Sprint(i)})
	}
	// 9 messages, keep 3: i kept when floor((i+1)/3) > floor(i/3), that
	// is i = 2, 5, 8: two ham, one spam.
	got := limitTest(test, 3)
	var names []string
	for _, m := range got {
		names = append(names, m.group+m.md5)
	}
	if fmt.Sprint(names) != "[ham2 ham5 spam2]" {
		t.Errorf("limitTest(9, 3) = %v, want [ham2 ham5 spam2]", names)
	}
	if got := limitTest(test, 0); len(got) != 9 {
		t.Errorf("limitTest(9, 0) kept %d, want all 9", len(got))
	}
	if got := limitTest(test, 20); len(got) != 9 {
		t.Errorf("limitTest(9, 20) kept %d, want all 9", len(got))
	}
}

func TestAtCutoff(t *testing.T) {
	// At or above 5: spams 5 and 7.5, ham 5.
	s, h := atCutoff([]float64{4.9, 5, 7.5}, []float64{-1, 5, 4.99}, 5)
	if s != 2 || h != 1 {
		t.Errorf("atCutoff = %d spam, %d ham; want 2, 1", s, h)
	}
}
