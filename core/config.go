package core

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/serializer"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

// config is Options resolved: validated, clamped, every default filled in.
// newConfig is the one place where defaults are decided; the components are
// built from it.
type config struct {
	name, instanceID string
	// defaults are the entry options every call starts from.
	defaults EntryOptions
	// defaultsFor is Options.DefaultEntryOptionsFor (nil: none).
	defaultsFor        func(key string) *EntryOptions
	maxKeyLen, maxTags int
	closeTimeout       time.Duration
	l1MaxEntries       int

	// L2.
	keyPrefix         string
	tombstoneTTL      time.Duration
	markerTTL         time.Duration
	maxL2ValueSize    int
	l2BreakerDuration time.Duration

	// Backplane.
	bpBreakerDuration time.Duration
	publishTimeout    time.Duration
	staleBound        time.Duration
	// probeEvery is Options.BackplaneProbeInterval or its default
	// (negative: no probes).
	probeEvery       time.Duration
	waitForSubscribe time.Duration
	ignoreIncoming   bool
	// bpValueLimit: Options.BackplaneValueLimit.
	bpValueLimit int
	// cloner makes AutoClone's copies (nil: AutoClone off).
	cloner serializer.Serializer

	// Auto-recovery (off: recoveryMaxItems == 0).
	recoveryMaxItems int
	recoveryDelay    time.Duration
}

// newConfig validates o (an *OptionError names the first invalid field) and
// resolves it. It fills in o's defaults too (o.L1MaxEntries), for the L1
// engine.
func newConfig(o *Options) (config, error) {
	if err := o.validate(); err != nil {
		return config{}, err
	}
	o.clamp()
	if o.L1MaxEntries == 0 && o.L1MaxWeight == 0 {
		o.L1MaxEntries = DefaultL1MaxEntries
	}
	cfg := config{
		name:              cmp.Or(o.Name, "default"),
		instanceID:        o.InstanceID,
		defaults:          DefaultEntryOptions(),
		defaultsFor:       o.DefaultEntryOptionsFor,
		maxKeyLen:         cmp.Or(o.MaxKeyLength, DefaultMaxKeyLength),
		maxTags:           cmp.Or(o.MaxTags, DefaultMaxTags),
		closeTimeout:      cmp.Or(o.CloseTimeout, DefaultCloseTimeout),
		l1MaxEntries:      o.L1MaxEntries,
		keyPrefix:         o.KeyPrefix,
		tombstoneTTL:      cmp.Or(o.TombstoneTTL, DefaultTombstoneTTL),
		markerTTL:         cmp.Or(o.MarkerTTL, DefaultMarkerTTL),
		maxL2ValueSize:    cmp.Or(o.MaxL2ValueSize, DefaultMaxL2ValueSize),
		bpValueLimit:      cmp.Or(o.BackplaneValueLimit, DefaultBackplaneValueLimit),
		l2BreakerDuration: o.L2CircuitBreakerDuration,
		bpBreakerDuration: o.BackplaneCircuitBreakerDuration,
		publishTimeout:    cmp.Or(o.BackplanePublishTimeout, DefaultBackplanePublishTimeout),
		staleBound:        cmp.Or(o.BackplaneStalenessBound, DefaultBackplaneStalenessBound),
		probeEvery:        o.BackplaneProbeInterval,
		waitForSubscribe:  o.WaitForInitialSubscribe,
		ignoreIncoming:    o.IgnoreIncomingBackplaneMessages,
		recoveryDelay:     cmp.Or(o.AutoRecoveryDelay, DefaultAutoRecoveryDelay),
	}
	if o.DefaultEntryOptions != nil {
		cfg.defaults = *o.DefaultEntryOptions
		cfg.defaults.Tags = append([]string(nil), cfg.defaults.Tags...)
	}
	if o.AutoClone {
		cfg.cloner = cmp.Or[serializer.Serializer](o.Serializer, jsonserializer.New())
	}
	if cfg.probeEvery == 0 {
		cfg.probeEvery = cfg.staleBound / 4
	}
	if !o.AutoRecoveryDisabled && (o.L2 != nil || o.Backplane != nil) {
		cfg.recoveryMaxItems = cmp.Or(o.AutoRecoveryMaxItems, DefaultAutoRecoveryMaxItems)
	}
	return cfg, nil
}

// resolve returns the effective options of a call: the cache's defaults
// adjusted by opts, validated. The result is the caller's to keep.
func (cfg *config) resolve(opts []EntryOption) (*EntryOptions, error) {
	return cfg.resolveFor("", opts)
}

// resolveFor is resolve for a call about key: its defaults are those
// Options.DefaultEntryOptionsFor gives for key, if any.
func (cfg *config) resolveFor(key string, opts []EntryOption) (*EntryOptions, error) {
	eo := new(EntryOptions)
	*eo = *cfg.defaultsOf(key)
	if len(eo.Tags) > 0 {
		eo.Tags = append([]string(nil), eo.Tags...)
	}
	if err := apply(eo, opts); err != nil {
		return nil, err
	}
	if err := eo.validate("EntryOptions."); err != nil {
		return nil, err
	}
	eo.clamp()
	if err := cfg.checkTags("EntryOptions.Tags", eo.Tags); err != nil {
		return nil, err
	}
	return eo, nil
}

// defaultsOf returns the options the calls about key start from.
func (cfg *config) defaultsOf(key string) *EntryOptions {
	if cfg.defaultsFor == nil {
		return &cfg.defaults // inlined: the common case costs no call (every L1 hit asks)
	}
	return cfg.defaultsForKey(key)
}

// defaultsForKey is defaultsOf with Options.DefaultEntryOptionsFor set.
// Kept out of line so that defaultsOf stays small enough to inline.
//
//go:noinline
func (cfg *config) defaultsForKey(key string) *EntryOptions {
	if key != "" {
		if d := cfg.defaultsFor(key); d != nil {
			return d
		}
	}
	return &cfg.defaults
}

// checkKey checks a key against the cache's limits.
func (cfg *config) checkKey(key string) error {
	if key == "" {
		return errEmptyKey
	}
	if len(key) > cfg.maxKeyLen {
		return &OptionError{Field: "key", Value: fmt.Sprintf("%.32q... (%d bytes)", key, len(key)), Why: fmt.Sprintf("must be at most %d bytes (Options.MaxKeyLength)", cfg.maxKeyLen)}
	}
	if strings.HasPrefix(key, reservedPrefix) {
		return &OptionError{Field: "key", Value: key, Why: "must not start with " + reservedPrefix + " (reserved)"}
	}
	return nil
}

// checkTags checks the tags of an entry against the cache's limits.
func (cfg *config) checkTags(field string, tags []string) error {
	if len(tags) > cfg.maxTags {
		return &OptionError{Field: field, Value: len(tags), Why: fmt.Sprintf("must hold at most %d tags (Options.MaxTags); count", cfg.maxTags)}
	}
	for _, t := range tags {
		if len(t) > cfg.maxKeyLen {
			return &OptionError{Field: field, Value: fmt.Sprintf("%.32q... (%d bytes)", t, len(t)), Why: fmt.Sprintf("must hold tags of at most %d bytes (Options.MaxKeyLength)", cfg.maxKeyLen)}
		}
	}
	return nil
}

// clamp caps the durations of o at MaxDuration.
func (o *Options) clamp() {
	for _, d := range []*time.Duration{
		&o.CloseTimeout, &o.L2CircuitBreakerDuration, &o.BackplaneCircuitBreakerDuration, &o.BackplanePublishTimeout,
		&o.BackplaneStalenessBound, &o.BackplaneProbeInterval, &o.WaitForInitialSubscribe, &o.TombstoneTTL, &o.MarkerTTL, &o.AutoRecoveryDelay,
	} {
		*d = min(*d, MaxDuration)
	}
	if o.DefaultEntryOptions != nil {
		eo := *o.DefaultEntryOptions
		eo.clamp()
		o.DefaultEntryOptions = &eo
	}
}

func (o *Options) validate() error {
	switch {
	case o.L1MaxEntries < 0:
		return &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "must not be negative"}
	case o.L1MaxWeight > 0 && o.L1Weigher == nil:
		return &OptionError{Field: "Options.L1Weigher", Value: nil, Why: "is required with L1MaxWeight"}
	case o.L1MaxWeight == 0 && o.L1Weigher != nil:
		return &OptionError{Field: "Options.L1MaxWeight", Value: 0, Why: "must be > 0 with L1Weigher"}
	case o.MaxKeyLength < 0 || o.MaxKeyLength > backplane.MaxKeyLen:
		return &OptionError{Field: "Options.MaxKeyLength", Value: o.MaxKeyLength, Why: fmt.Sprintf("must be in [0, %d]", backplane.MaxKeyLen)}
	case o.MaxTags < 0 || o.MaxTags > l2.MaxTags:
		return &OptionError{Field: "Options.MaxTags", Value: o.MaxTags, Why: fmt.Sprintf("must be in [0, %d]", l2.MaxTags)}
	case o.CloseTimeout < 0:
		return &OptionError{Field: "Options.CloseTimeout", Value: o.CloseTimeout, Why: "must not be negative"}
	case o.Backplane != nil && len(o.Name) > backplane.MaxCacheNameLen:
		return &OptionError{Field: "Options.Name", Value: o.Name, Why: fmt.Sprintf("must be at most %d bytes with a backplane", backplane.MaxCacheNameLen)}
	case o.Backplane != nil && len(o.InstanceID) > maxInstanceIDLen:
		return &OptionError{Field: "Options.InstanceID", Value: o.InstanceID, Why: fmt.Sprintf("must be at most %d bytes with a backplane", maxInstanceIDLen)}
	case len(o.BackplaneSigningKeys) > 0 && o.Backplane == nil:
		return &OptionError{Field: "Options.BackplaneSigningKeys", Value: len(o.BackplaneSigningKeys), Why: "need Options.Backplane; keys"}
	case strings.HasPrefix(o.KeyPrefix, reservedPrefix):
		return &OptionError{Field: "Options.KeyPrefix", Value: o.KeyPrefix, Why: "must not start with " + reservedPrefix}
	case o.DistributedStampedeLock && !isLocker(o.L2):
		return &OptionError{Field: "Options.DistributedStampedeLock", Value: true, Why: "needs an Options.L2 that implements l2.Locker (redisl2 and meml2 do);"}
	case o.IgnoreIncomingBackplaneMessages && o.Backplane == nil:
		return &OptionError{Field: "Options.IgnoreIncomingBackplaneMessages", Value: true, Why: "needs Options.Backplane;"}
	case o.BackplaneValueLimit < 0 || o.BackplaneValueLimit > backplane.MaxValueLen:
		return &OptionError{Field: "Options.BackplaneValueLimit", Value: o.BackplaneValueLimit, Why: fmt.Sprintf("must be in [0, %d] (backplane.MaxValueLen; 0: DefaultBackplaneValueLimit)", backplane.MaxValueLen)}
	case o.Serializer != nil && o.L2 == nil && !o.AutoClone:
		return &OptionError{Field: "Options.Serializer", Value: o.Serializer, Why: "is only used with Options.L2 or Options.AutoClone, which are unset"}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"L2CircuitBreakerDuration", o.L2CircuitBreakerDuration}, {"BackplaneCircuitBreakerDuration", o.BackplaneCircuitBreakerDuration},
		{"AutoRecoveryDelay", o.AutoRecoveryDelay}, {"BackplanePublishTimeout", o.BackplanePublishTimeout},
		{"BackplaneStalenessBound", o.BackplaneStalenessBound}, {"TombstoneTTL", o.TombstoneTTL}, {"MarkerTTL", o.MarkerTTL},
		{"WaitForInitialSubscribe", o.WaitForInitialSubscribe},
	}
	for _, d := range durations {
		if d.d < 0 {
			return &OptionError{Field: "Options." + d.name, Value: d.d, Why: "must not be negative"}
		}
	}
	if len(o.BackplaneSigningKeys) > 0 {
		if _, err := backplane.NewKeyring(o.BackplaneSigningKeys...); err != nil {
			return &OptionError{Field: "Options.BackplaneSigningKeys", Value: len(o.BackplaneSigningKeys), Why: "are invalid (" + err.Error() + "); keys"}
		}
	}
	if o.MaxL2ValueSize < 0 {
		return &OptionError{Field: "Options.MaxL2ValueSize", Value: o.MaxL2ValueSize, Why: "must not be negative (0: DefaultMaxL2ValueSize)"}
	}
	if o.AutoRecoveryMaxItems < 0 {
		return &OptionError{Field: "Options.AutoRecoveryMaxItems", Value: o.AutoRecoveryMaxItems, Why: "must not be negative"}
	}
	for i, ob := range o.Observers {
		if ob == nil {
			return &OptionError{Field: "Options.Observers", Value: i, Why: "must not hold nil; nil at index"}
		}
	}
	for i, p := range o.Plugins {
		if p == nil {
			return &OptionError{Field: "Options.Plugins", Value: i, Why: "must not hold nil; nil at index"}
		}
	}
	if o.DefaultEntryOptions != nil {
		return o.DefaultEntryOptions.validate("Options.DefaultEntryOptions.")
	}
	return nil
}

func isLocker(s l2.Store) bool {
	_, ok := s.(l2.Locker)
	return ok
}
