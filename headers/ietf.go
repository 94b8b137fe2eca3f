package headers

import (
	"net/http"

	"github.com/dunglas/httpsfv"
)

// Canonical keys of the IETF fields.
const (
	keyPolicy = "Ratelimit-Policy"
	keyState  = "Ratelimit"
)

// ietfPolicy is one RateLimit-Policy item.
type ietfPolicy struct {
	name   string
	quota  int64
	window int64 // seconds, -1 when absent
}

// parseIETF reads RateLimit-Policy and RateLimit as defined by
// draft-ietf-httpapi-ratelimit-headers-10, joined by policy name:
//
//	RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400
//	RateLimit: "burst";r=50;t=30
//
// It also accepts draft-07's unnamed policies (RateLimit-Policy: 100;w=60)
// and the older dictionary RateLimit: limit=100, remaining=50, reset=30.
// Items that are not well-formed are skipped; a field that does not parse
// as a whole is ignored.
func parseIETF(h http.Header, p *picker) {
	pv, sv := h[keyPolicy], h[keyState]
	if pv == nil && sv == nil {
		return
	}
	var policies []ietfPolicy
	if pv != nil {
		if list, err := httpsfv.UnmarshalList(pv); err == nil {
			for _, m := range list {
				it, ok := m.(httpsfv.Item)
				if !ok {
					continue
				}
				name, ok := itemName(it.Value)
				if !ok {
					continue
				}
				quota := intParam(it.Params, "q")
				if quota < 0 {
					quota = nonNegative(it.Value) // draft-07: RateLimit-Policy: 100;w=60
				}
				policies = append(policies, ietfPolicy{
					name:   name,
					quota:  quota,
					window: intParam(it.Params, "w"),
				})
			}
		}
	}
	used := make([]bool, len(policies))
	if sv != nil {
		if !parseIETFState(sv, policies, used, p) {
			parseIETFDictionary(sv, p)
		}
	}
	// Policies with no current state still announce a quota.
	for i, pol := range policies {
		if used[i] {
			continue
		}
		l := unknown
		l.Name = pol.name
		l.Quota = pol.quota
		if pol.window >= 0 {
			l.Window = durationFromSeconds(pol.window)
		}
		p.add(l)
	}
}

// parseIETFState reads the RateLimit list; false when it is not a list of
// items (so that the caller may try the older dictionary syntax).
func parseIETFState(sv []string, policies []ietfPolicy, used []bool, p *picker) bool {
	list, err := httpsfv.UnmarshalList(sv)
	if err != nil {
		return false
	}
	for _, m := range list {
		it, ok := m.(httpsfv.Item)
		if !ok {
			continue
		}
		name, ok := itemName(it.Value)
		if !ok {
			continue
		}
		l := unknown
		l.Name = name
		l.Remaining = intParam(it.Params, "r")
		if t := intParam(it.Params, "t"); t >= 0 {
			l.Reset = clampDelay(durationFromSeconds(t))
		}
		for i, pol := range policies {
			if pol.name == name && !used[i] {
				used[i] = true
				l.Quota = pol.quota
				if pol.window >= 0 {
					l.Window = durationFromSeconds(pol.window)
				}
				break
			}
		}
		p.add(l)
	}
	return true
}

// parseIETFDictionary reads the pre-draft-07 RateLimit: limit=100, remaining=50, reset=30.
func parseIETFDictionary(sv []string, p *picker) {
	d, err := httpsfv.UnmarshalDictionary(sv)
	if err != nil {
		return
	}
	l := unknown
	l.Quota = dictInt(d, "limit")
	l.Remaining = dictInt(d, "remaining")
	if t := dictInt(d, "reset"); t >= 0 {
		l.Reset = clampDelay(durationFromSeconds(t))
	}
	p.add(l)
}

// itemName returns the policy name an item carries: a String or a Token, or
// "" for draft-07's Integer (unnamed) items.
func itemName(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case httpsfv.Token:
		return string(v), true
	case int64:
		return "", true
	}
	return "", false
}

// intParam returns the non-negative Integer parameter k clamped to
// MaxCount, or -1 when it is absent, negative or not an Integer.
func intParam(ps *httpsfv.Params, k string) int64 {
	if ps == nil {
		return -1
	}
	v, ok := ps.Get(k)
	if !ok {
		return -1
	}
	return nonNegative(v)
}

func dictInt(d *httpsfv.Dictionary, k string) int64 {
	m, ok := d.Get(k)
	if !ok {
		return -1
	}
	it, ok := m.(httpsfv.Item)
	if !ok {
		return -1
	}
	return nonNegative(it.Value)
}

func nonNegative(v any) int64 {
	i, ok := v.(int64)
	if !ok || i < 0 {
		return -1
	}
	return clampCount(uint64(i))
}
