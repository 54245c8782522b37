// genmodel's own answers for model categories PredictCsv does not print (BinomialUplift,
// TargetEncoder, WordEmbedding), and, with a fourth argument "contributions", the SHAP
// contributions of predictContributions (GBM, DRF, XGBoost), or with "leaf_ids" each tree's leaf
// node id (leafNodeAssignmentExtended): the same input handling as PredictCsv (cells "", NA, N/A, - left out, unknown
// levels as missing) and the same output format (Double.toHexString, NA for NaN).
import hex.genmodel.MojoModel;
import hex.genmodel.algos.tree.SharedTreeMojoModel;
import hex.genmodel.algos.targetencoder.ColumnsMapping;
import hex.genmodel.algos.targetencoder.TargetEncoderMojoModel;
import hex.genmodel.algos.word2vec.WordEmbeddingModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;

import java.io.BufferedReader;
import java.io.FileReader;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

public class GenmodelApi {
  public static void main(String[] args) throws Exception {
    boolean contributions = args.length > 3 && args[3].equals("contributions");
    boolean leafIds = args.length > 3 && args[3].equals("leaf_ids");
    // DRF's contributions read the variable importances: the model's metadata
    MojoModel model = MojoModel.load(args[0], contributions);
    EasyPredictModelWrapper wrapper = new EasyPredictModelWrapper(
        new EasyPredictModelWrapper.Config().setModel(model).setConvertUnknownCategoricalLevelsToNa(true)
            .setEnableContributions(contributions).setEnableLeafAssignment(leafIds));
    String category = model.getModelCategory().toString();
    List<String> header = new ArrayList<>();
    if (contributions) {
      for (String name : wrapper.getContributionNames()) header.add(name);
    } else if (leafIds) {
      for (String name : ((SharedTreeMojoModel) model).getDecisionPathNames()) header.add(name);
    } else if (model instanceof TargetEncoderMojoModel) {
      for (ColumnsMapping m : ((TargetEncoderMojoModel) model)._inoutMapping)
        for (String to : m.to()) header.add(to);
    } else if (model instanceof WordEmbeddingModel) {
      // one word column; its vector named as H2O's transform(aggregate_method="NONE") names them
      for (int i = 1; i <= ((WordEmbeddingModel) model).getVecSize(); i++) header.add("C" + i);
    } else {
      for (String name : model.getOutputNames()) header.add(name);
    }
    try (BufferedReader in = new BufferedReader(new FileReader(args[1]));
         PrintWriter out = new PrintWriter(args[2])) {
      out.println(String.join(",", header));
      String[] columns = in.readLine().split(",", -1);
      for (String line; (line = in.readLine()) != null; ) {
        String[] cells = line.split(",", -1);
        RowData row = new RowData();
        for (int i = 0; i < Math.min(columns.length, cells.length); i++) {
          String c = cells[i];
          if (c.length() >= 2 && c.startsWith("\"") && c.endsWith("\""))  // a quoted cell
            c = c.substring(1, c.length() - 1).replace("\"\"", "\"");
          if (!(c.isEmpty() || c.equals("NA") || c.equals("N/A") || c.equals("-"))) row.put(columns[i], c);
        }
        double[] values;
        if (leafIds) {
          int[] ids = wrapper.leafNodeAssignmentExtended(row)._nodeIds;
          List<String> idCells = new ArrayList<>();
          for (int id : ids) idCells.add(Integer.toString(id));
          out.println(String.join(",", idCells));
          continue;
        }
        if (contributions) {
          float[] shap = wrapper.predictContributions(row);
          values = new double[shap.length];
          for (int i = 0; i < shap.length; i++) values[i] = shap[i];
        }
        else if (category.equals("BinomialUplift")) values = wrapper.predictUpliftBinomial(row).predictions;
        else if (category.equals("TargetEncoder")) values = wrapper.predictTargetEncoding(row).transformations;
        else if (category.equals("WordEmbedding")) {
          float[] vec = wrapper.predictWord2Vec(row).wordEmbeddings.get(model.getNames()[0]);
          values = new double[header.size()];
          for (int i = 0; i < values.length; i++) values[i] = vec == null ? Double.NaN : vec[i];
        }
        else throw new IllegalArgumentException("no API answer for a " + category + " model");
        List<String> cellsOut = new ArrayList<>();
        for (double v : values) cellsOut.add(Double.isNaN(v) ? "NA" : Double.toHexString(v));
        out.println(String.join(",", cellsOut));
      }
    }
  }
}
