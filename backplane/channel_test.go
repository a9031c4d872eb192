package backplane

import (
	"strconv"
	"strings"
	"testing"
)

func TestChannelName(t *testing.T) {
	for _, tc := range []struct{ cache, want string }{
		{"users", "strata.v1.users"},
		{"Users-2", "strata.v1.Users-2"},
		{"user_sessions", "strata.v1.user__sessions"},
		{"a.b c", "strata.v1.a_2Eb_20c"},
		{"orders:eu", "strata.v1.orders_3Aeu"},
		{"*", "strata.v1._2A"},
		{">", "strata.v1._3E"},
		{"_", "strata.v1.__"},
		{"_41", "strata.v1.__41"},
		{"A", "strata.v1.A"},
		{"", "strata.v1._"},
		{"é", "strata.v1._C3_A9"},
		{"\x00\xff", "strata.v1._00_FF"},
	} {
		if got := ChannelName(tc.cache); got != tc.want {
			t.Errorf("ChannelName(%q) = %q, want %q", tc.cache, got, tc.want)
		}
	}
}

func TestChannelPrefixCarriesWireVersion(t *testing.T) {
	if want := "strata.v" + strconv.Itoa(WireVersion) + "."; channelPrefix != want {
		t.Fatalf("channelPrefix = %q, want %q", channelPrefix, want)
	}
}

// checkChannel fails unless name is a valid Redis channel, NATS subject and
// (up to 255 bytes) RabbitMQ exchange name.
func checkChannel(t *testing.T, cache, name string) {
	t.Helper()
	if len(cache) <= MaxCacheNameLen && len(name) > 255 {
		t.Errorf("ChannelName(%q) is %d bytes, more than RabbitMQ allows (255)", cache, len(name))
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			t.Errorf("ChannelName(%q) = %q holds %q, not allowed in a RabbitMQ exchange name", cache, name, c)
		}
	}
	for _, tok := range strings.Split(name, ".") {
		if tok == "" {
			t.Errorf("ChannelName(%q) = %q has an empty NATS token", cache, name)
		}
	}
	if strings.ContainsAny(name, " \t\r\n*>") {
		t.Errorf("ChannelName(%q) = %q holds a NATS wildcard or space", cache, name)
	}
}

func TestChannelNameIsSafeAndReversible(t *testing.T) {
	caches := []string{"", "_", "__", "_5F", "a", "a.b", "a..b", ".", "x*", "x>", " ", "users",
		strings.Repeat("\xff", MaxCacheNameLen), strings.Repeat(".", MaxCacheNameLen)}
	for b := range 256 {
		caches = append(caches, string([]byte{byte(b)}), "k"+string([]byte{byte(b)})+"_")
	}
	seen := make(map[string]string)
	for _, cache := range caches {
		name := ChannelName(cache)
		checkChannel(t, cache, name)
		if other, dup := seen[name]; dup && other != cache {
			t.Errorf("ChannelName(%q) = ChannelName(%q) = %q", cache, other, name)
		}
		seen[name] = cache
		back, ok := cacheFromChannel(name)
		if !ok || back != cache {
			t.Errorf("cacheFromChannel(%q) = %q, %v, want %q", name, back, ok, cache)
		}
	}
}

func TestCacheFromChannelRejectsForeignNames(t *testing.T) {
	for _, name := range []string{"", "strata.v1.", "strata.v2.a", "strata.v1.a.b", "strata.v1._", "strata.v1._4",
		"strata.v1._4a", "strata.v1._41", "strata.v1._5F", "strata.v1.a_", "strata.v1.__ _"} {
		if cache, ok := cacheFromChannel(name); ok && ChannelName(cache) != name {
			t.Errorf("cacheFromChannel(%q) = %q, true, but ChannelName of that is %q", name, cache, ChannelName(cache))
		}
	}
}

func FuzzChannelName(f *testing.F) {
	for _, s := range []string{"", "users", "a.b", "_", "_41", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cache string) {
		name := ChannelName(cache)
		checkChannel(t, cache, name)
		if back, ok := cacheFromChannel(name); !ok || back != cache {
			t.Fatalf("cacheFromChannel(ChannelName(%q)) = %q, %v", cache, back, ok)
		}
	})
}
