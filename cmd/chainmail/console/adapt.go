package console

import (
	"context"
	"time"
)

// heldFields is any struct type with exactly Held's fields (such as
// milter/holdqueue.Held), convertible to Held.
type heldFields interface {
	~struct {
		QueueID string
		Arrival time.Time
		Sender  string
		Rcpts   []string
		Size    int64
	}
}

// holdQueueOf is a hold queue listing its own Held type.
type holdQueueOf[H heldFields] interface {
	List(ctx context.Context) ([]H, error)
	Message(ctx context.Context, id string) ([]byte, error)
	Release(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
}

// AdaptHoldQueue makes a HoldQueue of a queue whose List returns its own
// Held type with the same fields (milter/holdqueue.Queue):
// console.AdaptHoldQueue[holdqueue.Held](q).
func AdaptHoldQueue[H heldFields](q holdQueueOf[H]) HoldQueue {
	return adaptedQueue[H]{q}
}

type adaptedQueue[H heldFields] struct{ holdQueueOf[H] }

func (a adaptedQueue[H]) List(ctx context.Context) ([]Held, error) {
	hs, err := a.holdQueueOf.List(ctx)
	out := make([]Held, len(hs))
	for i, h := range hs {
		out[i] = Held(h)
	}
	return out, err
}
