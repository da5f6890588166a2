//go:build !chainmail_bayes

package main

import "errors"

func openBayes(string) (bayesClassifier, error) {
	return nil, errors.New("this build has no bayes check (chainmail/checks/bayes)")
}
