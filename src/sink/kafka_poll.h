// TakeMessages: one poll of a librdkafka queue that returns what has arrived without waiting
// for more.
//
// rd_kafka_consume_batch_queue() waits until its array is full or its timeout has passed. Asked
// for a whole batch at once, it held every record of a slow stream (and the last records of a
// topic read to its end) for the whole timeout. Here the queue is drained without waiting, and
// only when it is empty does the call wait, for the first message; what came with it is taken
// at once.
#pragma once

#include <librdkafka/rdkafka.h>
#include <sys/types.h>

#include <vector>

namespace turnstiled::sink {

// Fills (*msgs)[0, n) and returns n: 0 when nothing came within timeout_ms, -1 on an error of
// the queue. The caller owns and destroys the messages.
inline ssize_t TakeMessages(rd_kafka_queue_t* queue, int timeout_ms,
                            std::vector<rd_kafka_message_t*>* msgs) {
  rd_kafka_message_t** out = msgs->data();
  const size_t size = msgs->size();
  ssize_t n = rd_kafka_consume_batch_queue(queue, 0, out, size);
  // An error of the draining call goes on to the waiting call, which reports it: returned at
  // once, it would have the caller poll again without waiting.
  if (n > 0 || timeout_ms == 0 || size == 0) return n;
  n = rd_kafka_consume_batch_queue(queue, timeout_ms, out, 1);
  if (n != 1 || size == 1) return n;
  const ssize_t more = rd_kafka_consume_batch_queue(queue, 0, out + 1, size - 1);
  return more > 0 ? 1 + more : 1;
}

}  // namespace turnstiled::sink
