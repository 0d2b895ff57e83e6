// Java's LMAX Disruptor as a peer of Gyre's ring bench (benches/src/ring/lmax_java.rs
// runs this as a subprocess). One producer, one consumer, busy-spin, a ring of
// the same capacity carrying one long per slot, as Gyre's `1p1c` cases do.
//
// Protocol on stdin/stdout, one line each way per run, so the JVM starts (and
// its JIT warms) once and Gyre's rounds interleave with these:
//   "run <events> <batch>"  ->  "<nanoseconds>"
// The consumer sums the events; a wrong sum ends the process with an error, so
// a run that loses or repeats an event cannot report a rate.
import com.lmax.disruptor.BusySpinWaitStrategy;
import com.lmax.disruptor.EventHandler;
import com.lmax.disruptor.RingBuffer;
import com.lmax.disruptor.dsl.Disruptor;
import com.lmax.disruptor.dsl.ProducerType;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadFactory;

public final class LmaxRing {
    static final class LongEvent {
        long value;
    }

    static final class Summing implements EventHandler<LongEvent> {
        final long last;
        final CountDownLatch done = new CountDownLatch(1);
        long sum;

        Summing(long events) {
            last = events - 1;
        }

        @Override
        public void onEvent(LongEvent e, long sequence, boolean endOfBatch) {
            sum += e.value;
            if (sequence == last) {
                done.countDown();
            }
        }
    }

    static long run(int capacity, long events, int batch) throws InterruptedException {
        ThreadFactory threads = r -> {
            Thread t = new Thread(r, "lmax-consumer");
            t.setDaemon(true);
            return t;
        };
        Disruptor<LongEvent> disruptor = new Disruptor<>(
                LongEvent::new, capacity, threads, ProducerType.SINGLE, new BusySpinWaitStrategy());
        Summing handler = new Summing(events);
        disruptor.handleEventsWith(handler);
        RingBuffer<LongEvent> ring = disruptor.start();
        long start = System.nanoTime();
        if (batch == 1) {
            for (long i = 0; i < events; i++) {
                long seq = ring.next();
                ring.get(seq).value = i;
                ring.publish(seq);
            }
        } else {
            long i = 0;
            while (i < events) {
                int k = (int) Math.min(batch, events - i);
                long hi = ring.next(k);
                long lo = hi - k + 1;
                for (long s = lo; s <= hi; s++) {
                    ring.get(s).value = i++;
                }
                ring.publish(lo, hi);
            }
        }
        handler.done.await();
        long elapsed = System.nanoTime() - start;
        disruptor.halt();
        long expected = events * (events - 1) / 2;
        if (handler.sum != expected) {
            throw new IllegalStateException("sum " + handler.sum + ", expected " + expected);
        }
        return elapsed;
    }

    public static void main(String[] args) throws Exception {
        int capacity = Integer.parseInt(args[0]);
        // Warm the JIT on both paths before the first measured run.
        for (int i = 0; i < 3; i++) {
            run(capacity, 2_000_000, 1);
            run(capacity, 2_000_000, 64);
        }
        System.out.println("ready");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            if (f.length != 3 || !f[0].equals("run")) {
                throw new IllegalArgumentException("expected 'run <events> <batch>', got: " + line);
            }
            System.out.println(run(capacity, Long.parseLong(f[1]), Integer.parseInt(f[2])));
            System.out.flush();
        }
    }
}
