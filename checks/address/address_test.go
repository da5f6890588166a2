package address

import "testing"

// Moved from reputation's TestDomainsAndSubjects with the helpers.
func TestOrgDomainAndMailboxes(t *testing.T) {
	for in, want := range map[string]string{"a.b.example.co.uk": "example.co.uk", "[192.0.2.1]": "", "localhost": "", "xn--bcher-kva.test": "xn--bcher-kva.test", "bücher.test": "xn--bcher-kva.test", "192.0.2.1": ""} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
	ms := ParseMailboxes(`"Doe, John" <john@example.com>, =?utf-8?q?J=C3=B6rg?= <j@example.org>`)
	if len(ms) != 2 || ms[0].Name != "Doe, John" || ms[1].Name != "Jörg" || ms[1].Domain() != "example.org" {
		t.Errorf("%+v", ms)
	}
	if m := FirstMailbox(`John Doe <john@example.com> (broken`); m.Address != "john@example.com" {
		t.Errorf("lenient: %+v", m)
	}
	if m := FirstMailbox(`=?koi8-r?b?8NLJ18XU?= <x@example.ru>`); m.Name != "Привет" {
		t.Errorf("koi8-r name %q", m.Name)
	}
}

// OrgDomain is dns.OrganizationalDomain after normalisation, with ""
// where there is no registrable domain: a public suffix (which
// dns.OrganizationalDomain returns as itself) is no subject.
func TestOrgDomainPublicSuffix(t *testing.T) {
	for in, want := range map[string]string{"co.uk": "", "COM": "", "Example.COM.": "example.com", "www.食狮.公司.cn": "xn--85x722f.xn--55qx5d.cn", "公司.cn": ""} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
