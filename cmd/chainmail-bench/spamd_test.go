package main

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
)

func TestReadSpamd(t *testing.T) {
	resp := "SPAMD/1.1 0 EX_OK\r\nContent-length: 26\r\nSpam: True ; 6.5 / 5.0\r\n\r\nBAYES_99,HTML_MESSAGE,X_1"
	r, err := readSpamd(bufio.NewReader(strings.NewReader(resp)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Spam || r.Score != 6.5 || r.Required != 5 || fmt.Sprint(r.Rules) != "[BAYES_99 HTML_MESSAGE X_1]" {
		t.Errorf("readSpamd = %+v", r)
	}
	r, err = readSpamd(bufio.NewReader(strings.NewReader("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -1.9 / 5.0\r\n\r\n")))
	if err != nil || r.Spam || r.Score != -1.9 || len(r.Rules) != 0 {
		t.Errorf("readSpamd = %+v, %v", r, err)
	}
	for _, bad := range []string{
		"SPAMD/1.1 76 Bad header line: (EOF)\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: True ; x / 5.0\r\n\r\n",
	} {
		if _, err := readSpamd(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readSpamd(%q): no error", bad)
		}
	}
}
