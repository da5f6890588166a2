package bayes

import (
	"math"
	"sort"
)

// The classifier is Gary Robinson's: each token's spam probability is
// smoothed towards an unknown word's by how often it was seen (his f(w)),
// the most telling tokens are kept, and their probabilities are combined
// with Fisher's inverse chi-square test, once for the hypothesis "spam"
// and once for "ham" (the "chi-squared combining" of SpamBayes, the same
// family as SpamAssassin's and bogofilter's). Unlike a naive-Bayes
// product, the chi-square combination says "unsure" (near 0.5) when the
// evidence points both ways, instead of a confident answer.

// params are the classifier's constants.
type params struct {
	// s is the strength of the prior: how many sightings a token needs
	// before its own counts outweigh x.
	s float64
	// x is the spam probability of a token never seen.
	x float64
	// minDev drops tokens whose f(w) is within minDev of 0.5: they say
	// nothing and only dilute the test.
	minDev float64
	// maxTokens is how many of the most telling tokens are combined.
	maxTokens int
}

var defaultParams = params{s: 0.05, x: 0.6, minDev: 0.375, maxTokens: 30}

// counts is what the database knows of one token: in how many learned
// spam and ham messages it appeared.
type counts struct{ spam, ham float64 }

// tokenProb is Robinson's f(w) for a token seen in c.spam of nspam learned
// spam and c.ham of nham learned ham.
func (p params) tokenProb(c counts, nspam, nham float64) float64 {
	n := c.spam + c.ham
	if n <= 0 || nspam <= 0 || nham <= 0 {
		return p.x
	}
	sr, hr := c.spam/nspam, c.ham/nham
	pw := sr / (sr + hr)
	return (p.s*p.x + n*pw) / (p.s + n)
}

// combine returns the spam probability of a message whose tokens have the
// spam probabilities probs, and how many tokens it used.
func (p params) combine(probs []float64) (float64, int) {
	telling := probs[:0:0]
	for _, f := range probs {
		if math.Abs(f-0.5) >= p.minDev {
			telling = append(telling, f)
		}
	}
	if len(telling) == 0 {
		return 0.5, 0
	}
	if len(telling) > p.maxTokens {
		sort.Slice(telling, func(i, j int) bool { return math.Abs(telling[i]-0.5) > math.Abs(telling[j]-0.5) })
		telling = telling[:p.maxTokens]
	}
	var lnSpam, lnHam float64 // ln Π(1-f), ln Π f
	for _, f := range telling {
		f = math.Min(math.Max(f, 1e-6), 1-1e-6)
		lnSpam += math.Log(1 - f)
		lnHam += math.Log(f)
	}
	n := len(telling)
	spamminess := 1 - chi2Q(-2*lnSpam, 2*n)
	hamminess := 1 - chi2Q(-2*lnHam, 2*n)
	return (1 + spamminess - hamminess) / 2, n
}

// chi2Q is the probability that a chi-square variable with v (even)
// degrees of freedom is at least x2: the upper tail, in closed form for
// even v, summed in a way that neither overflows nor underflows for the
// hundreds of degrees of freedom a long message gives.
func chi2Q(x2 float64, v int) float64 {
	m := x2 / 2
	if m <= 0 {
		return 1
	}
	// Σ_{i<v/2} e^-m m^i / i!, with each term computed from the last.
	term := math.Exp(-m)
	sum := term
	if term == 0 {
		// e^-m underflowed: sum the terms in logs.
		logTerm := -m
		logSum := math.Inf(-1)
		for i := 0; i < v/2; i++ {
			if i > 0 {
				logTerm += math.Log(m / float64(i))
			}
			logSum = logAdd(logSum, logTerm)
		}
		return math.Min(math.Exp(logSum), 1)
	}
	for i := 1; i < v/2; i++ {
		term *= m / float64(i)
		sum += term
	}
	return math.Min(sum, 1)
}

func logAdd(a, b float64) float64 {
	if math.IsInf(a, -1) {
		return b
	}
	if a < b {
		a, b = b, a
	}
	return a + math.Log1p(math.Exp(b-a))
}
