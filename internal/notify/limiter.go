package notify

import (
	"sync"
	"time"
)

// limiter lets one notification per repository through per window; each repository has its own
// window, so a burst for one repository never delays another.
type limiter struct {
	window time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

func newLimiter(window time.Duration) *limiter {
	return &limiter{window: window, last: map[string]time.Time{}}
}

// allow reports whether a notification for key may pass at now, and otherwise how long until it
// may.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[key]; ok {
		if wait := last.Add(l.window).Sub(now); wait > 0 {
			return false, wait
		}
	}
	if len(l.last) >= 4096 {
		for k, t := range l.last {
			if now.Sub(t) >= l.window {
				delete(l.last, k)
			}
		}
	}
	l.last[key] = now
	return true, 0
}

// forget lets the next notification for key through at once (the last one was not acted on).
func (l *limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.last, key)
}
