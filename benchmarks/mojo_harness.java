// Pure-Java genmodel baseline for benchmarks/bench_mojo.py (compiled with javac at benchmark time).
// Usage: java -cp h2o.jar:. MojoHarness MOJO CSV MODE ROWS REPEATS
//   MODE = easy  : EasyPredictModelWrapper on RowData built beforehand (typed like parsed JSON:
//                  Double for numeric columns, String for categorical ones)
//          score0: GenModel.score0 on double[] rows already encoded (like predict_numpy)
//          single: EasyPredict one row per call, each call timed on its own after a JIT-warming
//                  pass over all rows; prints the median and p99 microseconds per call
//          cold  : load the MOJO and predict the first CSV row, then exit (fresh-JVM cold start)
// Prints one line: rows_per_second (easy/score0); for cold: milliseconds since main() started,
// milliseconds spent in MojoModel.load, heap in use after a full GC, and the process's VmRSS (kB).
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;

import java.io.BufferedReader;
import java.io.FileReader;
import java.util.ArrayList;
import java.util.List;

class MojoHarness {
    /** Exposes the protected row conversion so score0 can be timed on encoded rows. */
    static class Wrapper extends EasyPredictModelWrapper {
        Wrapper(Config c) { super(c); }
        double[] encode(RowData row, double[] raw) throws Exception { return fillRawData(row, raw); }
    }

    public static void main(String[] args) throws Exception {
        long t0 = System.nanoTime();
        String mojo = args[0], csv = args[1], mode = args[2];
        int rows = Integer.parseInt(args[3]), repeats = Integer.parseInt(args[4]);
        long tl = System.nanoTime();
        MojoModel model = MojoModel.load(mojo);
        double loadMs = (System.nanoTime() - tl) / 1e6;
        Wrapper wrapper = new Wrapper(
            new EasyPredictModelWrapper.Config().setModel(model)
                .setConvertUnknownCategoricalLevelsToNa(true).setConvertInvalidNumbersToNa(true));
        List<RowData> data = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new FileReader(csv))) {
            String[] header = r.readLine().split(",", -1);
            java.util.Map<String, Integer> index = new java.util.HashMap<>();
            String[] names = model.getNames();
            for (int i = 0; i < names.length; i++) index.put(names[i], i);
            String line;
            while ((line = r.readLine()) != null && data.size() < rows) {
                String[] cells = line.split(",", -1);
                RowData row = new RowData();
                for (int i = 0; i < header.length && i < cells.length; i++) {
                    if (cells[i].isEmpty()) continue;
                    // typed like parsed JSON: numbers as Double for numeric columns, strings for enums
                    Integer idx = index.get(header[i]);
                    boolean numeric = idx != null && idx < model.nfeatures() && model.getDomainValues(idx) == null;
                    if (numeric) {
                        try { row.put(header[i], Double.parseDouble(cells[i])); }
                        catch (NumberFormatException e) { /* missing */ }
                    } else {
                        row.put(header[i], cells[i]);
                    }
                }
                data.add(row);
                if (mode.equals("cold")) break;
            }
        }
        if (mode.equals("cold")) {
            double[] p = wrapper.predictRaw(data.get(0), 0.0);
            double total = (System.nanoTime() - t0) / 1e6;
            System.gc();
            Runtime rt = Runtime.getRuntime();
            long heap = rt.totalMemory() - rt.freeMemory();
            String rss = "0";
            for (String ln : java.nio.file.Files.readAllLines(java.nio.file.Paths.get("/proc/self/status")))
                if (ln.startsWith("VmRSS:")) rss = ln.replaceAll("[^0-9]", "");
            System.out.println(total + " " + loadMs + " " + heap + " " + rss + " " + p[p.length - 1]);
            return;
        }
        int n = data.size();
        double[][] raw = new double[n][];
        for (int i = 0; i < n; i++) {
            double[] x = new double[model.nfeatures()];
            java.util.Arrays.fill(x, Double.NaN);
            raw[i] = wrapper.encode(data.get(i), x);
        }
        double sink = 0;
        if (mode.startsWith("contrib")) {  // SHAP: predictContributions, JIT-warm
            EasyPredictModelWrapper shap = new EasyPredictModelWrapper(
                new EasyPredictModelWrapper.Config().setModel(MojoModel.load(mojo, true))
                    .setConvertUnknownCategoricalLevelsToNa(true).setEnableContributions(true));
            double best = 0;
            for (int rep = 0; rep < repeats; rep++) {
                long t = System.nanoTime();
                for (RowData row : data) sink += shap.predictContributions(row)[0];
                best = Math.max(best, n / ((System.nanoTime() - t) / 1e9));
            }
            if (mode.equals("contrib")) {
                System.out.println(best + " " + (sink == 42.4242 ? "!" : ""));
                return;
            }
            long[] t = new long[n];
            for (int i = 0; i < n; i++) {
                long s = System.nanoTime();
                sink += shap.predictContributions(data.get(i))[0];
                t[i] = System.nanoTime() - s;
            }
            java.util.Arrays.sort(t);
            System.out.println(t[n / 2] / 1e3 + " " + (sink == 42.4242 ? "!" : ""));
            return;
        }
        if (mode.equals("single")) {
            for (int rep = 0; rep < repeats; rep++)
                for (RowData row : data) sink += wrapper.predictRaw(row, 0.0)[0];
            long[] t = new long[n];
            for (int i = 0; i < n; i++) {
                long s = System.nanoTime();
                sink += wrapper.predictRaw(data.get(i), 0.0)[0];
                t[i] = System.nanoTime() - s;
            }
            java.util.Arrays.sort(t);
            System.out.println(t[n / 2] / 1e3 + " " + t[(int) (n * 0.99)] / 1e3 + " " + (sink == 42.4242 ? "!" : ""));
            return;
        }
        double best = 0;
        double[] preds = new double[model.getPredsSize()];
        for (int rep = 0; rep < repeats; rep++) {
            long t = System.nanoTime();
            if (mode.equals("easy")) {
                for (int i = 0; i < n; i++) sink += wrapper.predictRaw(data.get(i), 0.0)[0];
            } else {
                for (int i = 0; i < n; i++) sink += model.score0(raw[i], preds)[0];
            }
            double rps = n / ((System.nanoTime() - t) / 1e9);
            best = Math.max(best, rps);
        }
        System.out.println(best + " " + (sink == 42.4242 ? "!" : ""));
    }
}
