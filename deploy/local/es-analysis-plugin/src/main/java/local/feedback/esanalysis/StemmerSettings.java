package local.feedback.esanalysis;

import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.StringSetting;

/** Settings of the {@code stemmer} token filter; like Elasticsearch's, {@code language} or {@code name}. */
@AnalysisSettings
public interface StemmerSettings {

    @StringSetting(path = "language", defaultValue = "")
    String language();

    @StringSetting(path = "name", defaultValue = "")
    String name();
}
